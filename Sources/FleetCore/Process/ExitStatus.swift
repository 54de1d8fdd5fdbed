/// How a child process ended, decoded once from its `waitpid` status for everyone who
/// waits for one (modules, scoring workers, pip, the hub's helper programs).
public struct ExitStatus: Equatable, Sendable, CustomStringConvertible {
    /// The exit code, or 128 + the signal that ended the process, as a shell reports it.
    public let code: Int32
    /// The signal that ended the process, if one did.
    public let signal: Int32?

    public init(waitStatus status: Int32) {
        let signal = status & 0x7f
        self.signal = signal == 0 ? nil : signal
        code = signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }

    /// Exited with code 0.
    public var succeeded: Bool { code == 0 && signal == nil }

    /// "exited with code N" or "killed by signal N".
    public var description: String { signal.map { "killed by signal \($0)" } ?? "exited with code \(code)" }
}
