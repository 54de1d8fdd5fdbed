import FleetCore
import Foundation

/// The bundles (archive and unpacked folder) and Python environments of modules that
/// left the device, kept within a budget so a module that comes back (a retag, a
/// redeploy, a rollback) starts again offline, without a download or pip. What is in
/// use is never evicted; of the rest, the least recently used go first.
struct BundleCache {
    let dataDirectory: DataDirectory
    /// Bytes the unused bundles and environments may take together (`cacheBudgetMB`).
    let budget: Int64

    /// What one eviction removed, for the log.
    struct Eviction: Equatable {
        /// The bundle's digest, or the environment's key.
        var name: String
        var kind: Kind
        var bytes: Int64
        var lastUsed: Date

        enum Kind: String { case bundle, environment }
    }

    /// A cached bundle with the environment only it (of the cached bundles) refers to.
    private struct Entry {
        var digest: ContentDigest
        var bytes: Int64
        var lastUsed: Date
        var environment: String?
    }

    /// Marks the bundles in `inUse` as used now, deletes partial downloads and hidden
    /// scratch files of other bundles, then evicts unused bundles, least recently used
    /// first, until the unused ones fit in the budget; then deletes every environment no
    /// kept bundle refers to. `environmentKey` names a bundle's environment (nil: none).
    func trim(inUse: Set<ContentDigest>, environmentKey: (ContentDigest) -> String?) -> [Eviction] {
        let manager = FileManager.default
        let now = Date()
        var cached = Set<ContentDigest>()
        for folder in [dataDirectory.bundles, dataDirectory.modules] {
            for name in (try? manager.contentsOfDirectory(atPath: folder.path)) ?? [] {
                let url = folder.appendingPathComponent(name)
                let hex = name.split(separator: ".").first.map(String.init) ?? name
                let digest = ContentDigest(hex: hex)
                if let digest, inUse.contains(digest), !name.hasPrefix(".") {
                    try? manager.setAttributes([.modificationDate: now], ofItemAtPath: url.path)
                    continue
                }
                guard let digest, !name.hasPrefix("."), !name.hasSuffix(".partial") else {
                    try? manager.removeItem(at: url)
                    continue
                }
                cached.insert(digest)
            }
        }
        let keptEnvironments = Set(inUse.compactMap(environmentKey))
        var entries = cached.map { digest in
            let paths = [dataDirectory.bundle(digest), dataDirectory.moduleFolder(digest)]
            return Entry(
                digest: digest, bytes: paths.reduce(0) { $0 + Self.size(of: $1) },
                lastUsed: paths.compactMap(Self.modified).max() ?? .distantPast,
                environment: environmentKey(digest).flatMap { keptEnvironments.contains($0) ? nil : $0 })
        }.sorted { ($0.lastUsed, $0.digest) > ($1.lastUsed, $1.digest) }
        // An environment shared by cached bundles counts once, with the most recent of them.
        var counted = Set<String>()
        var environmentBytes: [String: Int64] = [:]
        for index in entries.indices {
            guard let key = entries[index].environment else { continue }
            if counted.insert(key).inserted {
                let bytes = Self.size(of: dataDirectory.environments.appendingPathComponent(key))
                environmentBytes[key] = bytes
                entries[index].bytes += bytes
            } else {
                entries[index].environment = nil
            }
        }

        var evictions: [Eviction] = []
        var total: Int64 = 0
        var keptKeys = keptEnvironments
        for entry in entries {
            if total + entry.bytes <= budget {
                total += entry.bytes
                if let key = entry.environment { keptKeys.insert(key) }
                continue
            }
            try? manager.removeItem(at: dataDirectory.bundle(entry.digest))
            try? manager.removeItem(at: dataDirectory.moduleFolder(entry.digest))
            evictions.append(Eviction(
                name: entry.digest.description, kind: .bundle, bytes: entry.bytes - (entry.environment.flatMap { environmentBytes[$0] } ?? 0),
                lastUsed: entry.lastUsed))
        }
        for key in Set(entries.compactMap(\.environment)).subtracting(keptKeys).sorted() {
            let url = dataDirectory.environments.appendingPathComponent(key)
            evictions.append(Eviction(
                name: key, kind: .environment, bytes: environmentBytes[key] ?? 0, lastUsed: Self.modified(url) ?? .distantPast))
            try? manager.removeItem(at: url)
        }
        // Environments nothing refers to at all (their bundles went earlier).
        let referenced = keptKeys.union(entries.compactMap { environmentKey($0.digest) })
        for name in (try? manager.contentsOfDirectory(atPath: dataDirectory.environments.path)) ?? []
        where !referenced.contains(name) && !evictions.contains(where: { $0.name == name }) {
            let url = dataDirectory.environments.appendingPathComponent(name)
            evictions.append(Eviction(name: name, kind: .environment, bytes: Self.size(of: url), lastUsed: Self.modified(url) ?? .distantPast))
            try? manager.removeItem(at: url)
        }
        return evictions
    }

    private static func modified(_ url: URL) -> Date? {
        (try? FileManager.default.attributesOfItem(atPath: url.path))?[.modificationDate] as? Date
    }

    /// Bytes of a file, or of every file under a folder.
    static func size(of url: URL) -> Int64 {
        let manager = FileManager.default
        var isFolder: ObjCBool = false
        guard manager.fileExists(atPath: url.path, isDirectory: &isFolder) else { return 0 }
        guard isFolder.boolValue else { return ((try? manager.attributesOfItem(atPath: url.path))?[.size] as? NSNumber)?.int64Value ?? 0 }
        var total: Int64 = 0
        let enumerator = manager.enumerator(at: url, includingPropertiesForKeys: [.fileSizeKey, .isRegularFileKey])
        while let file = enumerator?.nextObject() as? URL {
            let values = try? file.resourceValues(forKeys: [.fileSizeKey, .isRegularFileKey])
            if values?.isRegularFile == true { total += Int64(values?.fileSize ?? 0) }
        }
        return total
    }
}
