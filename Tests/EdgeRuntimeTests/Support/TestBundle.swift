import Crypto
import EdgeRuntime
import FleetCore
import Foundation
import ZIPFoundation

/// A module bundle built in memory with ZIPFoundation, for tests: a `module.json`
/// listing the given files (or a hand-made manifest), plus any raw entries a test
/// wants to smuggle in.
struct TestBundle {
    enum RawEntry {
        case file(path: String, data: Data)
        case symlink(path: String, target: String)
    }

    let data: Data
    var digest: ContentDigest { ContentDigest(of: data) }
    var size: Int { data.count }

    func reference(baseURL: String) -> BundleReference {
        BundleReference(digest: digest, size: size, url: "\(baseURL)/v1/bundles/\(digest)")
    }

    /// A `process` module running `script` with `/bin/sh`.
    static func shellModule(name: String, version: Int, script: String) throws -> TestBundle {
        try make(name: name, version: version, files: ["run.sh": Data(script.utf8)], command: ["/bin/sh", "run.sh"])
    }

    static func make(
        name: String = "demo", version: Int = 1, files: [String: Data], command: [String]? = ["/bin/sh", "run.sh"],
        kind: ModuleKind = .process, manifestFiles: [FileEntry]? = nil, extra: [RawEntry] = [],
        compress: Bool = true, requirements: [String] = []
    ) throws -> TestBundle {
        let listed = manifestFiles ?? files.keys.sorted().map { path in
            FileEntry(path: path, sha256: SHA256.hash(data: files[path]!).hexString, size: files[path]!.count)
        }
        let manifest = ModuleManifest(
            name: name, version: version, kind: kind, command: command, models: [], files: listed, requirements: requirements,
            createdAt: Date(timeIntervalSince1970: 0))
        var entries: [RawEntry] = [.file(path: ModuleManifest.fileName, data: try FleetJSON.encode(manifest))]
        entries += files.keys.sorted().map { RawEntry.file(path: $0, data: files[$0]!) }
        entries += extra
        return TestBundle(data: try zip(entries, compress: compress))
    }

    static func zip(_ entries: [RawEntry], compress: Bool = true) throws -> Data {
        let archive = try Archive(accessMode: .create)
        for entry in entries {
            switch entry {
            case .file(let path, let data):
                try archive.addEntry(
                    with: path, type: .file, uncompressedSize: Int64(data.count),
                    modificationDate: Date(timeIntervalSince1970: 0), permissions: 0o644,
                    compressionMethod: compress ? .deflate : .none
                ) { position, size in
                    data.subdata(in: Int(position)..<Int(position) + size)
                }
            case .symlink(let path, let target):
                let bytes = Data(target.utf8)
                try archive.addEntry(
                    with: path, type: .symlink, uncompressedSize: Int64(bytes.count),
                    modificationDate: Date(timeIntervalSince1970: 0)
                ) { position, size in
                    bytes.subdata(in: Int(position)..<Int(position) + size)
                }
            }
        }
        return archive.data!
    }
}
