import FleetCore

/// What is on the device right now, as far as planning needs to know.
public struct DeviceState: Equatable, Sendable {
    /// Installed modules by name.
    public var modules: [String: InstalledModule]
    /// Bundles in the download cache.
    public var cachedBundles: Set<ContentDigest>
    /// Bundles unpacked and verified.
    public var unpackedBundles: Set<ContentDigest>
    /// Unpacked `python-scoring` bundles whose Python environment is ready.
    public var readyEnvironments: Set<ContentDigest>

    public init(
        modules: [String: InstalledModule] = [:], cachedBundles: Set<ContentDigest> = [],
        unpackedBundles: Set<ContentDigest> = [], readyEnvironments: Set<ContentDigest> = []
    ) {
        self.modules = modules
        self.cachedBundles = cachedBundles
        self.unpackedBundles = unpackedBundles
        self.readyEnvironments = readyEnvironments
    }
}

/// A module installed on the device.
public struct InstalledModule: Equatable, Sendable {
    public var spec: ModuleSpec
    /// Whether the supervisor keeps it running (also while in back-off).
    public var isRunning: Bool
    /// A bundle this module rolled back from.
    public var rejectedDigest: ContentDigest?

    public init(spec: ModuleSpec, isRunning: Bool, rejectedDigest: ContentDigest? = nil) {
        self.spec = spec
        self.isRunning = isRunning
        self.rejectedDigest = rejectedDigest
    }
}
