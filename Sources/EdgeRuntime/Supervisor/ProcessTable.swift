import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Reads `/proc` to recognise a module's processes after the runtime restarted (and
/// lets tests look at the processes the runtime started).
public enum ProcessTable {
    public struct Entry: Equatable, Sendable {
        public var pid: Int32
        public var processGroup: Int32
        public var startTicks: UInt64
        public var isZombie: Bool
        /// The nice value the process runs at.
        public var nice: Int32
    }

    /// The process `pid`, or nil when it does not exist.
    public static func entry(pid: Int32) -> Entry? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        // Fields after the command name, which may itself contain spaces and ')'.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 19, let group = Int32(fields[2]), let nice = Int32(fields[16]), let ticks = UInt64(fields[19])
        else { return nil }
        return Entry(pid: pid, processGroup: group, startTicks: ticks, isZombie: fields[0] == "Z", nice: nice)
    }

    /// Every live (not zombie) process in process group `group`.
    public static func members(ofGroup group: Int32) -> [Entry] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return names.compactMap(Int32.init).compactMap(entry(pid:))
            .filter { $0.processGroup == group && !$0.isZombie }
    }
}
