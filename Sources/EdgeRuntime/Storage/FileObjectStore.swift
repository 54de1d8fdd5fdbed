import FleetCore
import Foundation

/// Objects as files under a folder (`file:///var/lib/…`), the default store for the quickstart.
/// Each object is written to a temporary file in the same folder, fsynced, then renamed into place, so a
/// reader never sees half an object and a crash leaves either the old object or the new one; the folder is fsynced too, so an
/// acknowledged object survives a power cut.
public struct FileObjectStore: ObjectStore {
    public let root: URL

    public init(root: URL) {
        self.root = root
    }

    public var location: String { root.absoluteString }

    public func put(key: String, data: Data, contentType: String) async throws {
        let target = root.appendingPathComponent(key)
        let folder = target.deletingLastPathComponent()
        let temporary = folder.appendingPathComponent(".\(target.lastPathComponent).\(UUID().uuidString).tmp")
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else {
                throw ObjectStoreError.fileSystem(path: temporary.path, reason: "cannot create the file")
            }
            let handle = try FileHandle(forWritingTo: temporary)
            defer { try? handle.close() }
            try handle.write(contentsOf: data)
            try handle.synchronize()
            guard rename(temporary.path, target.path) == 0 else {
                throw ObjectStoreError.fileSystem(path: target.path, reason: String(cString: strerror(errno)))
            }
            // The rename is durable only once the folder's entry is on disk.
            let folderDescriptor = open(folder.path, O_RDONLY)
            if folderDescriptor >= 0 {
                fsync(folderDescriptor)
                close(folderDescriptor)
            }
        } catch let error as ObjectStoreError {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw ObjectStoreError.fileSystem(path: target.path, reason: error.localizedDescription)
        }
    }
}
