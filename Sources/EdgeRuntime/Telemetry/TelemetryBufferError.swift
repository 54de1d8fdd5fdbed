import Foundation

/// Why the telemetry buffer could not do what was asked; each case names the database file.
public enum TelemetryBufferError: Error, CustomStringConvertible {
    /// The SQLite file could not be opened or migrated (missing folder, no permission, not a database).
    case open(path: String, reason: String)
    /// A write (append, acknowledge, expiry) failed; nothing of it was committed.
    case write(path: String, operation: String, reason: String)
    /// Reading buffered records failed.
    case read(path: String, reason: String)

    public var description: String {
        switch self {
        case .open(let path, let reason):
            "telemetry buffer: cannot open '\(path)': \(reason). Check that the folder exists and is writable."
        case .write(let path, let operation, let reason):
            "telemetry buffer '\(path)': \(operation) failed: \(reason). Nothing of it was committed; check free disk space."
        case .read(let path, let reason):
            "telemetry buffer '\(path)': reading records failed: \(reason)"
        }
    }
}
