// swift-tools-version:6.1
// libFuzzer targets for the parsers of untrusted bytes. Not part of the main build:
// `scripts/fuzz` builds them with `-sanitize=fuzzer,address` and runs each for a
// bounded time over its seed corpus in `fuzz/corpus/`.
import Foundation
import PackageDescription

// SwiftPM names a local package after its folder, which is whatever the clone is called.
let fleet = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent.lowercased()

let package = Package(
    name: "fleet-fuzz",
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        // libFuzzer's driver, which each target's main runs with its input callback.
        .target(name: "CFuzzer"),
        // The signed desired-state envelope and the device's gate.
        .executableTarget(
            name: "FuzzDesiredState",
            dependencies: [
                .product(name: "FleetCore", package: fleet), .product(name: "EdgeRuntime", package: fleet),
                .product(name: "Crypto", package: "swift-crypto"), "CFuzzer",
            ]),
        // A downloaded module bundle (zip) unpacked by the device.
        .executableTarget(
            name: "FuzzBundle", dependencies: [.product(name: "FleetCore", package: fleet), "CFuzzer"]),
        // A device's health report or connection state, decoded by the hub.
        .executableTarget(
            name: "FuzzHealthReport",
            dependencies: [.product(name: "FleetCore", package: fleet), .product(name: "FleetHub", package: fleet), "CFuzzer"]),
        // A deployment manifest (YAML) parsed by the hub.
        .executableTarget(
            name: "FuzzManifest", dependencies: [.product(name: "FleetHub", package: fleet), "CFuzzer"]),
    ],
    // The harnesses keep their fixed inputs (a key, a decoder) in top-level constants
    // that libFuzzer's callback reads from its one thread.
    swiftLanguageModes: [.v5]
)
