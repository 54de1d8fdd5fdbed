import Foundation
import Synchronization

/// A module's log file with a size cap: when the current file would grow past
/// `maximumBytes` it becomes `.1` (older ones shift to `.2`, … up to `keep`) and a
/// new file starts, so a chatty module can never fill the disk. Module processes and
/// scoring workers write into a pipe the runtime copies here (`LogPump`), never into
/// the file itself, so after a rotation they write to the current file.
public final class RotatingLog: Sendable {
    public let url: URL
    private let maximumBytes: Int64
    private let keep: Int
    private let state: Mutex<(handle: FileHandle?, size: Int64)>

    public init(url: URL, maximumBytes: Int64, keep: Int) {
        self.url = url
        self.maximumBytes = maximumBytes
        self.keep = keep
        let size = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.int64Value ?? 0
        state = Mutex((nil, size))
        // A module that started has a log, even before it printed anything (`edge-runtime logs`).
        Self.createIfMissing(url)
    }

    private static func createIfMissing(_ url: URL) {
        if !FileManager.default.fileExists(atPath: url.path) {
            _ = FileManager.default.createFile(atPath: url.path, contents: nil, attributes: [.posixPermissions: 0o600])
        }
    }

    func write(_ data: Data) {
        state.withLock { state in
            if state.size + Int64(data.count) > maximumBytes, state.size > 0 {
                try? state.handle?.close()
                state.handle = nil
                rotate()
                state.size = 0
            }
            if state.handle == nil {
                Self.createIfMissing(url)
                state.handle = try? FileHandle(forWritingTo: url)
                _ = try? state.handle?.seekToEnd()
            }
            try? state.handle?.write(contentsOf: data)
            state.size += Int64(data.count)
        }
    }

    func close() {
        state.withLock { state in
            try? state.handle?.close()
            state.handle = nil
        }
    }

    private func rotate() {
        let manager = FileManager.default
        try? manager.removeItem(at: Self.rotated(url, keep))
        if keep > 1 {
            for index in stride(from: keep - 1, through: 1, by: -1) {
                try? manager.moveItem(at: Self.rotated(url, index), to: Self.rotated(url, index + 1))
            }
        }
        if keep > 0 {
            try? manager.moveItem(at: url, to: Self.rotated(url, 1))
        } else {
            try? manager.removeItem(at: url)
        }
    }

    /// The path of rotated file number `index` (1 is the most recent).
    static func rotated(_ url: URL, _ index: Int) -> URL {
        URL(fileURLWithPath: "\(url.path).\(index)")
    }
}

/// Copies everything a module writes to its stdout/stderr pipe into its log, on a
/// thread of its own, until every process holding the pipe's write end has exited.
enum LogPump {
    static func start(reading descriptor: Int32, into log: RotatingLog) {
        let thread = Thread {
            var buffer = [UInt8](repeating: 0, count: 16 * 1024)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count > 0 {
                    log.write(Data(buffer[0..<count]))
                } else if count < 0 && errno == EINTR {
                    continue
                } else {
                    break
                }
            }
            close(descriptor)
        }
        thread.start()
    }
}
