import FleetCore
import FleetTesting
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `writeSecretFile` and `createPrivateDirectory` never let a secret exist with a mode
/// wider than the owner's, whatever the umask. The umask is 000 here, so a mode that
/// came from the umask (0666, 0777) would show.
@Suite(.serialized)
struct SecretFileTests {
    /// Runs `body` with umask 000, restoring the previous one afterwards.
    func withOpenUmask<T>(_ body: () throws -> T) rethrows -> T {
        let previous = umask(0)
        defer { umask(previous) }
        return try body()
    }

    func mode(_ path: String) throws -> Int {
        try #require((try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue)
    }

    @Test func aSecretFileIs0600FromItsFirstByteWhateverTheUmask() async throws {
        let directory = try TemporaryDirectory(prefix: "secret-file")
        let path = directory.file("device.key")
        // Another thread looks at every entry of the folder while the files are written,
        // so a temporary or final file visible with a wider mode, even briefly, is seen.
        let watcher = FolderModeWatcher(folder: directory.url.path)
        let thread = Thread { watcher.watch() }
        thread.start()
        let data = Data(repeating: 0x41, count: 1 << 20)
        try withOpenUmask {
            for _ in 0..<200 { try writeSecretFile(data, to: path) }
        }
        watcher.stop()
        #expect(watcher.widerModes.isEmpty, "seen with a wider mode: \(watcher.widerModes)")
        #expect(watcher.looks > 0)
        #expect(try mode(path) == 0o600)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == data)
        // Only the secret is left: no temporary file.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.url.path) == ["device.key"])
    }

    @Test func anExistingWiderFileIsReplacedBy0600() throws {
        let directory = try TemporaryDirectory(prefix: "secret-file")
        let path = directory.file("config.json")
        try Data("old".utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o644)
        try withOpenUmask { try writeSecretFile(Data("new".utf8), to: path) }
        #expect(try mode(path) == 0o600)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "new")
    }

    @Test func aFolderThatCannotBeWrittenFailsNamingTheFile() throws {
        let path = "/nonexistent-\(UUID().uuidString)/hub.token"
        #expect {
            try writeSecretFile(Data("x".utf8), to: path)
        } throws: { error in
            guard case SecretFileError.cannotCreate(let named, _) = error else { return false }
            return named == path && "\(error)".contains(path)
        }
    }

    @Test func aPrivateFolderIs0700WhateverTheUmask() throws {
        let directory = try TemporaryDirectory(prefix: "private-folder")
        let fresh = directory.file("a/b/workspace")
        try withOpenUmask { try createPrivateDirectory(fresh) }
        #expect(try mode(fresh) == 0o700)
        // An existing folder open to others is narrowed.
        let existing = directory.file("existing")
        try FileManager.default.createDirectory(atPath: existing, withIntermediateDirectories: false)
        chmod(existing, 0o755)
        try createPrivateDirectory(existing)
        #expect(try mode(existing) == 0o700)
    }
}

/// Lists a folder and stats each entry in a tight loop until stopped, recording every
/// entry seen with a group or other permission bit.
final class FolderModeWatcher: @unchecked Sendable {
    let folder: String
    private let lock = NSLock()
    private var stopped = false
    private let finished = DispatchSemaphore(value: 0)
    /// Read only after `stop()`.
    private(set) var widerModes: [String] = []
    private(set) var looks = 0

    init(folder: String) { self.folder = folder }

    func watch() {
        defer { finished.signal() }
        while !lock.withLock({ stopped }) {
            guard let dir = opendir(folder) else { continue }
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                guard name != ".", name != ".." else { continue }
                var status = stat()
                guard lstat("\(folder)/\(name)", &status) == 0 else { continue }
                if status.st_mode & 0o077 != 0 { widerModes.append("\(name) \(String(status.st_mode & 0o777, radix: 8))") }
            }
            closedir(dir)
            looks += 1
        }
    }

    func stop() {
        lock.withLock { stopped = true }
        finished.wait()
    }
}
