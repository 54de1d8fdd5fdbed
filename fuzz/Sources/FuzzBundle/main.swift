import CFuzzer
import FleetCore
import Foundation

private let folder = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-bundle-\(getpid())")

/// The bytes are a downloaded bundle: unpacked into a fresh folder, then removed.
@_cdecl("fleet_fuzz_one")
func fuzz(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let archive = folder.appendingPathComponent("bundle.zip")
    try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    try? Data(bytes: bytes, count: count).write(to: archive)
    _ = try? BundleReader(limits: BundleLimits(maximumTotalBytes: 16 << 20, maximumFileBytes: 8 << 20, maximumEntries: 1_000)).unpack(archive: archive, into: folder.appendingPathComponent("module"))
    try? FileManager.default.removeItem(at: folder)
    return 0
}

exit(fleet_fuzz_main(CommandLine.argc, CommandLine.unsafeArgv))
