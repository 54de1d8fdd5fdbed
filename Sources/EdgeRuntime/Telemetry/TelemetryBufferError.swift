import Foundation

/// Why the telemetry buffer could not do what was asked; each case names the database file.
public enum TelemetryBufferError: Error, CustomStringConvertible {
    /// The SQLite file could not be opened or migrated (missing folder, no permission, not a database).
    case open(path: String, reason: String)
    /// A write (append, acknowledge, expiry) failed; nothing of it was committed.
    case write(path: String, operation: String, reason: String)
    /// Reading buffered records failed.
    case read(path: String, reason: String)
    /// The disk holding the buffer is full (SQLite's SQLITE_FULL): the records were refused and
    /// counted as refused for `disk-full`; records acknowledged before are kept and uploaded.
    case diskFull(path: String, folder: String, freeBytes: Int64)

    public var description: String {
        switch self {
        case .open(let path, let reason):
            "telemetry buffer: cannot open '\(path)': \(reason). Check that the folder exists and is writable."
        case .write(let path, let operation, let reason):
            "telemetry buffer '\(path)': \(operation) failed: \(reason). Nothing of it was committed; check free disk space."
        case .read(let path, let reason):
            "telemetry buffer '\(path)': reading records failed: \(reason)"
        case .diskFull(let path, let folder, let freeBytes):
            "telemetry buffer '\(path)': the disk is full (\(freeBytes) bytes free in \(folder)), so the record was refused "
                + "and counted (disk-full); records acknowledged before are kept and still uploaded. Free space in \(folder): "
                + "the buffer takes records again by itself"
        }
    }
}
