import FleetCore
import Foundation

/// Where the runtime keeps its files under the device's data dir:
///
/// ```
/// edge-runtime.lock       held (flock) by the running daemon; holds its pid
/// state.sqlite            accepted desired state, applied state, module processes
/// bundles/<hex>.zip       content-addressed bundle cache (and <hex>.partial while downloading)
/// modules/<hex>/          an unpacked, verified bundle; shared by modules with the same digest
/// logs/<module>.log       a module's stdout and stderr (rotated to .log.1, .log.2, …)
/// environments/<key>/     Python venvs, one per distinct requirements set
/// ```
public struct DataDirectory: Sendable, Equatable {
    public let root: URL

    public init(_ root: URL) {
        self.root = root
    }

    /// The data dir of `config`, or `/var/lib/edge-runtime/<deviceId>` when it names none.
    public init(config: DeviceConfig) {
        self.init(URL(fileURLWithPath: config.dataDir ?? "/var/lib/edge-runtime/\(config.deviceId)"))
    }

    public var database: URL { root.appendingPathComponent("state.sqlite") }
    /// Locked by the one `edge-runtime run` on this data dir (`DataDirectoryLock`).
    public var lock: URL { root.appendingPathComponent("edge-runtime.lock") }
    public var bundles: URL { root.appendingPathComponent("bundles") }
    public var modules: URL { root.appendingPathComponent("modules") }
    public var logs: URL { root.appendingPathComponent("logs") }
    public var environments: URL { root.appendingPathComponent("environments") }
    /// The telemetry buffer (SQLite, WAL).
    public var telemetryBuffer: URL { root.appendingPathComponent("telemetry.sqlite") }

    public func bundle(_ digest: ContentDigest) -> URL { bundles.appendingPathComponent("\(digest.hex).zip") }
    public func partialBundle(_ digest: ContentDigest) -> URL { bundles.appendingPathComponent("\(digest.hex).partial") }
    public func moduleFolder(_ digest: ContentDigest) -> URL { modules.appendingPathComponent(digest.hex) }
    public func log(of module: String) -> URL { logs.appendingPathComponent("\(module).log") }

    /// Creates the folders (0700: bundles and logs may hold the owner's data).
    public func create() throws {
        for folder in [root, bundles, modules, logs, environments] {
            try FileManager.default.createDirectory(
                at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
    }
}
