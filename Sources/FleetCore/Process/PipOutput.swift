/// What a person needs from a failed pip run, shared by the hub's packaging checks and
/// the device's environment builder: pip's own error lines
/// (`ERROR: No matching distribution found for …`), else the output's last lines.
public enum PipOutput {
    public static func errorLines(of output: String, fallbackLines: Int = 5) -> String {
        let lines = output.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let errors = lines.filter { $0.hasPrefix("ERROR:") }
        return (errors.isEmpty ? Array(lines.suffix(fallbackLines)) : errors).joined(separator: " | ")
    }
}
