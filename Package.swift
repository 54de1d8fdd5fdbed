// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "fleet",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "fleethub", targets: ["fleethub"]),
        .executable(name: "edge-runtime", targets: ["edge-runtime"]),
        .executable(name: "fleet-simulator", targets: ["fleet-simulator"]),
        .library(name: "FleetCore", targets: ["FleetCore"]),
        .library(name: "FleetHub", targets: ["FleetHub"]),
        .library(name: "EdgeRuntime", targets: ["EdgeRuntime"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/yaslab/CSV.swift", from: "2.5.2"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
    ],
    targets: [
        // libmosquitto, the MQTT client library. Only FleetCore's MQTTClient touches it.
        .systemLibrary(
            name: "CMosquitto",
            pkgConfig: "libmosquitto",
            providers: [.apt(["libmosquitto-dev"])]
        ),
        // The contract between hub and device, signing, the MQTT client, and HTTP(S) with
        // the S3 client (the hub's blob bucket, the device's telemetry uploads).
        .target(
            name: "FleetCore",
            dependencies: [
                "CMosquitto",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
            ]
        ),
        // One SQL layer over the hub's two databases: SQLite (embedded) and PostgreSQL.
        .target(
            name: "FleetSQL",
            dependencies: [
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The hub: registry, packaging, deployments, fleet state, HTTP.
        .target(
            name: "FleetHub",
            dependencies: [
                "FleetCore",
                "FleetSQL",
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
                .product(name: "Hummingbird", package: "hummingbird"),
                // `fleethub serve` over HTTPS.
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                // IOError, to tell a port in use from other failures to listen.
                .product(name: "NIOCore", package: "swift-nio"),
                // PBKDF2, for the broker's password file.
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
                // The dashboard's HTML templates.
                .product(name: "Mustache", package: "swift-mustache"),
                // The hub's certificate authority: device, hub and broker certificates.
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                // Training data for drift baselines (`model register --baseline train.csv`).
                .product(name: "CSV", package: "CSV.swift"),
            ]
        ),
        // The device daemon: reconciler, supervisor, inference, telemetry.
        .target(
            name: "EdgeRuntime",
            dependencies: [
                "FleetCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                // The scoring workers' sockets, read on the local API's event loop.
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            resources: [.copy("Resources")]
        ),
        .executableTarget(
            name: "fleethub",
            dependencies: [
                "FleetHub",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "edge-runtime",
            dependencies: [
                "EdgeRuntime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Many simulated devices on one broker, for the fleet benchmark and dashboard tests.
        .executableTarget(
            name: "fleet-simulator",
            dependencies: [
                "FleetCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Drives the telemetry buffer from outside: the ingest benchmark and the kill -9 test.
        .executableTarget(
            name: "telemetry-bench",
            dependencies: [
                "EdgeRuntime",
                "FleetCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        // Throwaway real services (mosquitto, ...) on free loopback ports, for tests.
        .target(name: "FleetTesting", dependencies: ["FleetCore"]),
        .testTarget(name: "FleetCoreTests", dependencies: ["FleetCore", "FleetTesting"]),
        .testTarget(
            name: "FleetSQLTests",
            dependencies: [
                "FleetSQL", "FleetTesting",
                // GRDB's own date text, which the layer must keep writing.
                .product(name: "GRDB", package: "GRDB.swift"),
            ]),
        .testTarget(name: "FleetHubTests", dependencies: ["FleetHub", "FleetTesting"]),
        .testTarget(
            name: "EdgeRuntimeTests",
            dependencies: [
                "EdgeRuntime", "FleetTesting",
                .product(name: "Crypto", package: "swift-crypto"),
                // To write a telemetry buffer of the first schema, as an older runtime left it.
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
            ]),
        .testTarget(name: "IntegrationTests", dependencies: ["FleetHub", "EdgeRuntime", "FleetTesting"]),
    ],
    swiftLanguageModes: [.v6]
)
