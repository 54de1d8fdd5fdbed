import FleetCore
import Foundation

/// Finding the real programs that integration tests start, and deciding what a
/// missing one means: under `CI=true` it is a failure, elsewhere the test is skipped.
public enum Fixtures {
    /// True when running in CI, where every fixture must be present.
    public static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// The absolute path of `program` on PATH or in the usual system folders, or nil.
    public static func which(_ program: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let folders = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/local/sbin", "/usr/bin", "/sbin"]
        return folders.map { "\($0)/\(program)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Whether tests that need `program` should run: always in CI (so a missing
    /// program fails them), elsewhere only when it is installed.
    public static func shouldRun(needing program: String) -> Bool {
        isCI || which(program) != nil
    }

    /// The path of the package's executable `name` as `swift build` made it: beside the
    /// test bundle, or in an enclosing build folder.
    public static func builtExecutable(_ name: String) -> String {
        var folder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while !FileManager.default.isExecutableFile(atPath: folder.appendingPathComponent(name).path), folder.path != "/" {
            folder.deleteLastPathComponent()
        }
        let found = folder.appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: found) { return found }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/debug/\(name)").path
    }

    /// A TCP port on 127.0.0.1 that nothing listens on right now.
    public static func freePort() throws -> Int {
        let (descriptor, port) = try boundLoopbackSocket()
        close(descriptor)
        return port
    }

    /// A TCP socket bound to a free port on 127.0.0.1 (the kernel's choice), and the
    /// port; the caller listens on it or closes it.
    public static func boundLoopbackSocket() throws -> (descriptor: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw FixtureError.noFreePort }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                bind(fd, raw, length) == 0 && getsockname(fd, raw, &length) == 0
            }
        }
        guard bound else {
            close(fd)
            throw FixtureError.noFreePort
        }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    /// Whether something accepts TCP connections on 127.0.0.1:`port`.
    public static func isListening(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                connect(fd, raw, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

    /// Runs `program` to completion and returns its standard output; throws with its
    /// standard error when it exits non-zero.
    @discardableResult
    public static func run(_ program: String, _ arguments: [String], environment: [String: String]? = nil) throws -> String {
        let completed = try ProcessSpawner.run(
            [program] + arguments, environment: environment ?? ProcessInfo.processInfo.environment, separateErrors: true)
        guard completed.status.succeeded else {
            throw FixtureError.commandFailed(
                "\(program) \(arguments.joined(separator: " "))", status: completed.status.code, stderr: completed.errors)
        }
        return completed.output
    }
}

/// Why a test fixture could not be started.
public enum FixtureError: Error, CustomStringConvertible {
    case missingProgram(String, install: String)
    case noFreePort
    case didNotStart(String, log: String)
    case commandFailed(String, status: Int32, stderr: String)

    public var description: String {
        switch self {
        case .missingProgram(let program, let install): "\(program) is not installed; run \(install)"
        case .noFreePort: "no free TCP port on 127.0.0.1"
        case .didNotStart(let what, let log): "\(what) did not start:\n\(log)"
        case .commandFailed(let command, let status, let stderr): "\(command) exited with \(status): \(stderr)"
        }
    }
}
