import CFuzzer
import FleetHub
import Foundation

/// The bytes are a deployment manifest file.
@_cdecl("fleet_fuzz_one")
func fuzz(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    _ = try? ManifestParser.parse(String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self), file: "fuzz.yaml")
    return 0
}

exit(fleet_fuzz_main(CommandLine.argc, CommandLine.unsafeArgv))
