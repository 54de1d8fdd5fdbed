import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One publisher at a time per workspace, across every `fleethub` process and task
/// (each `deploy`, `publish`, `serve`'s rollouts). A publisher reads the staged states
/// and sends them in its turn, so a publisher that read a device's revision 5 can never
/// deliver it after another one delivered revision 6: the broker's retained state only
/// grows. The turn is an exclusive `flock` on `publish.lock` in the workspace, which the
/// kernel releases when its holder dies.
struct PublishingTurn {
    private let descriptor: Int32

    /// Waits for the turn.
    static func take(in workspace: Workspace) async throws -> PublishingTurn {
        let path = workspace.root.appendingPathComponent("publish.lock").path
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw WorkspaceError.unreadable(path, reason: String(cString: strerror(errno)))
        }
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            let reason = errno
            guard reason == EWOULDBLOCK || reason == EINTR else {
                close(descriptor)
                throw WorkspaceError.unreadable(path, reason: String(cString: strerror(reason)))
            }
            do {
                try await Task.sleep(for: .milliseconds(5))
            } catch {
                close(descriptor)
                throw error
            }
        }
        return PublishingTurn(descriptor: descriptor)
    }

    private init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    /// Ends the turn; the next waiting publisher takes it.
    func end() {
        close(descriptor)
    }
}
