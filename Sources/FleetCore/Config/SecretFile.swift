import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes `data` to `path` atomically, and so that no one but the owner can ever read
/// it: the bytes go to a new temporary file next to `path`, opened with `O_CREAT|O_EXCL`
/// and mode 0600 (the umask can only narrow that), set to exactly 0600 with `fchmod`
/// and checked with `fstat`, written, `fsync`ed, then renamed over `path`. A file
/// system that cannot keep the mode (a FAT USB stick) fails the write rather than
/// leaving a readable secret.
public func writeSecretFile(_ data: Data, to path: String) throws {
    let url = URL(fileURLWithPath: path)
    let folder = url.deletingLastPathComponent().path
    let temporary = "\(folder)/.\(url.lastPathComponent).\(UUID().uuidString).tmp"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_t(0o600))
    guard fd >= 0 else { throw SecretFileError.cannotCreate(path: path, reason: lastError()) }
    var renamed = false
    defer {
        if !renamed { unlink(temporary) }
    }
    do {
        defer { close(fd) }
        try setOwnerOnlyMode(fd, path: path, mode: 0o600)
        try data.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) in
            var offset = 0
            while offset < buffer.count {
                let written = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw SecretFileError.cannotWrite(path: path, reason: lastError())
                }
                offset += written
            }
        }
        guard fsync(fd) == 0 else { throw SecretFileError.cannotWrite(path: path, reason: lastError()) }
    }
    guard rename(temporary, path) == 0 else { throw SecretFileError.cannotWrite(path: path, reason: lastError()) }
    renamed = true
}

/// Creates the folder `path` (and missing parents) if needed and makes it 0700, for a
/// folder that holds secrets (the hub workspace). The leaf is created with mode 0700,
/// so it is never open to others, and an existing folder is narrowed to 0700.
public func createPrivateDirectory(_ path: String) throws {
    let parent = URL(fileURLWithPath: path).deletingLastPathComponent().path
    do {
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
    } catch {
        throw SecretFileError.cannotCreate(path: parent, reason: error.localizedDescription)
    }
    if mkdir(path, mode_t(0o700)) != 0 && errno != EEXIST {
        throw SecretFileError.cannotCreate(path: path, reason: lastError())
    }
    let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { throw SecretFileError.cannotCreate(path: path, reason: lastError()) }
    defer { close(fd) }
    try setOwnerOnlyMode(fd, path: path, mode: 0o700)
}

/// Sets the open file `fd` to exactly `mode` and checks that the file system kept it.
private func setOwnerOnlyMode(_ fd: Int32, path: String, mode: mode_t) throws {
    guard fchmod(fd, mode) == 0 else {
        throw SecretFileError.cannotSetMode(path: path, mode: Int(mode), reason: lastError())
    }
    var status = stat()
    guard fstat(fd, &status) == 0 else {
        throw SecretFileError.cannotSetMode(path: path, mode: Int(mode), reason: lastError())
    }
    let kept = status.st_mode & 0o7777
    guard kept == mode else {
        throw SecretFileError.cannotSetMode(
            path: path, mode: Int(mode),
            reason: "the file system keeps mode \(String(kept, radix: 8)); use a file system with Unix permissions")
    }
}

private func lastError() -> String { String(cString: strerror(errno)) }

/// Why a secret file or private folder could not be written safely.
public enum SecretFileError: Error, Equatable, CustomStringConvertible {
    case cannotCreate(path: String, reason: String)
    case cannotSetMode(path: String, mode: Int, reason: String)
    case cannotWrite(path: String, reason: String)

    public var description: String {
        switch self {
        case .cannotCreate(let path, let reason):
            "cannot create \(path): \(reason); check that its folder exists and is writable"
        case .cannotSetMode(let path, let mode, let reason):
            "cannot make \(path) mode \(String(mode, radix: 8)) (owner only), so it is not written: \(reason)"
        case .cannotWrite(let path, let reason):
            "cannot write \(path): \(reason); check the free space and the folder's permissions"
        }
    }
}
