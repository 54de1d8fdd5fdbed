import EdgeRuntime
import Foundation

/// Whether process `pid` exists and is not a zombie.
func isAlive(_ pid: Int32) -> Bool {
    ProcessTable.entry(pid: pid).map { !$0.isZombie } ?? false
}

/// The live processes whose working directory is inside `folder` (module processes
/// run in their unpacked bundle folder).
func processes(workingIn folder: URL) -> [Int32] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return names.compactMap(Int32.init).filter { pid in
        guard let cwd = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/cwd") else { return false }
        return cwd.hasPrefix(folder.resolvingSymlinksInPath().path) && isAlive(pid)
    }
}
