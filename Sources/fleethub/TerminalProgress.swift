import FleetCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One progress line on standard error while a long step runs (`hashing 120.0 / 300.0 MB,
/// 95.2 MB/s`), redrawn at most ten times a second and only when standard error is a
/// terminal, so scripts and logs get the result alone.
final class TerminalProgress {
    private let label: String
    private let enabled: Bool
    private var step: String?
    private var stepStarted = Date()
    private var lastDrawn = Date.distantPast
    private var drawn = false

    init(label: String, enabled: Bool = isatty(STDERR_FILENO) == 1) {
        self.label = label
        self.enabled = enabled
    }

    func update(_ progress: BundleProgress) {
        guard enabled else { return }
        let now = Date()
        if progress.step.rawValue != step {
            step = progress.step.rawValue
            stepStarted = now
        } else if now.timeIntervalSince(lastDrawn) < 0.1 && progress.bytesDone < progress.bytesTotal {
            return
        }
        lastDrawn = now
        let elapsed = max(now.timeIntervalSince(stepStarted), 0.001)
        let line = String(
            format: "%@: %@ %.1f / %.1f MB, %.1f MB/s", label, progress.step.rawValue,
            Double(progress.bytesDone) / 1e6, Double(progress.bytesTotal) / 1e6, Double(progress.bytesDone) / 1e6 / elapsed)
        FileHandle.standardError.write(Data("\r\u{1B}[K\(line)".utf8))
        drawn = true
    }

    /// Clears the line, so what the command prints next starts on a clean line.
    func finish() {
        if drawn { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}
