import Foundation

/// Reads a module's log for `edge-runtime logs`: the last lines across the current
/// and rotated files, and new lines as they are written.
public struct ModuleLogReader: Sendable {
    public let url: URL

    public init(dataDirectory: DataDirectory, module: String) {
        url = dataDirectory.log(of: module)
    }

    /// The last `count` lines, oldest first.
    public func tail(_ count: Int) throws -> [String] {
        guard FileManager.default.fileExists(atPath: url.path) else { throw LogReaderError.noLog(url.path) }
        var lines: [String] = []
        var index = 0
        while lines.count < count {
            let file = index == 0 ? url : RotatingLog.rotated(url, index)
            guard let data = FileManager.default.contents(atPath: file.path) else { break }
            var text = String(decoding: data, as: UTF8.self)
            if text.hasSuffix("\n") { text.removeLast() }
            if !text.isEmpty {
                lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) + lines
            }
            index += 1
        }
        return Array(lines.suffix(count))
    }

    /// Calls `write` with everything appended to the log from now on, until cancelled;
    /// follows the log across rotations.
    public func follow(_ write: @Sendable (Data) -> Void) async {
        var offset = fileSize()
        while !Task.isCancelled {
            let size = fileSize()
            if size < offset { offset = 0 }
            if size > offset, let handle = try? FileHandle(forReadingFrom: url) {
                try? handle.seek(toOffset: offset)
                if let data = try? handle.readToEnd() {
                    write(data)
                    offset += UInt64(data.count)
                }
                try? handle.close()
            }
            try? await Task.sleep(for: .milliseconds(250))
        }
    }

    private func fileSize() -> UInt64 {
        (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.uint64Value ?? 0
    }
}

/// Why a log cannot be shown.
public enum LogReaderError: Error, CustomStringConvertible {
    case noLog(String)

    public var description: String {
        switch self {
        case .noLog(let path):
            "no log at \(path): the module has not run on this device; `edge-runtime status` lists the modules"
        }
    }
}
