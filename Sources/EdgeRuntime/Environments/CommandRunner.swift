import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Runs a helper program (python's venv, pip) to completion without blocking a Swift
/// concurrency thread, and returns its exit status and combined output.
enum CommandRunner {
    struct Outcome: Sendable {
        var status: Int32
        var output: String
    }

    static func run(_ command: [String], in directory: URL, environment: [String: String]) async throws -> Outcome {
        var descriptors: [Int32] = [0, 0]
        guard pipe(&descriptors) == 0 else {
            throw LaunchError.spawnFailed(command: command, reason: String(cString: strerror(errno)))
        }
        for descriptor in descriptors { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
        let pid: pid_t
        do {
            pid = try ProcessLauncher.spawn(
                command: command, directory: directory, environment: environment, output: descriptors[1])
        } catch {
            close(descriptors[0])
            close(descriptors[1])
            throw error
        }
        close(descriptors[1])
        let reading = descriptors[0]
        return await withCheckedContinuation { continuation in
            let thread = Thread {
                var output = Data()
                var buffer = [UInt8](repeating: 0, count: 16 * 1024)
                while true {
                    let count = buffer.withUnsafeMutableBytes { read(reading, $0.baseAddress, $0.count) }
                    if count > 0 {
                        output.append(contentsOf: buffer[0..<count])
                    } else if count < 0 && errno == EINTR {
                        continue
                    } else {
                        break
                    }
                }
                close(reading)
                var status: Int32 = 0
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                let code = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
                continuation.resume(returning: Outcome(status: code, output: String(decoding: output, as: UTF8.self)))
            }
            thread.start()
        }
    }
}
