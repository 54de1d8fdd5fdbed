import FleetCore
import Foundation
import Logging

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `edge-runtime check`: diagnoses a device the way `iotedge check` does. Each check
/// passes or fails, and a failure says how to fix it.
public struct DeviceCheck: Sendable {
    /// One check's outcome.
    public struct Finding: Sendable, Equatable, Codable {
        public var name: String
        public var passed: Bool
        public var detail: String
        /// What to do about a failure.
        public var fix: String?
    }

    public let configPath: String
    /// Below this much free space in the data dir the disk check fails.
    public var minimumFreeBytes: Int64 = 256 << 20

    public init(configPath: String) {
        self.configPath = configPath
    }

    public func run() async -> [Finding] {
        let config: DeviceConfig
        do {
            config = try DeviceConfig.load(from: configPath)
        } catch {
            return [Finding(
                name: "config readable", passed: false, detail: "\(error)",
                fix: "write the file with `fleethub device add <id> --out \(configPath)` and make it readable by the runtime's user")]
        }
        var results = [Finding(name: "config readable", passed: true, detail: "\(configPath), device \(config.deviceId)")]
        results.append(hubKey(config))
        results.append(await broker(config))
        results.append(await bundleURL(config))
        results.append(diskSpace(config))
        results.append(python())
        return results
    }

    private func hubKey(_ config: DeviceConfig) -> Finding {
        do {
            let key = try HubPublicKey(base64: config.hub.publicKey)
            return Finding(name: "hub key valid", passed: true, detail: "key id \(key.keyId)")
        } catch {
            return Finding(
                name: "hub key valid", passed: false, detail: "\(error)",
                fix: "set hub.publicKey to the output of `fleethub key show` (base64 of 32 bytes)")
        }
    }

    private func broker(_ config: DeviceConfig) async -> Finding {
        let name = "broker reachable and authorised"
        do {
            let address = try BrokerAddress(config.broker.url)
            if !address.tls && config.broker.insecure != true {
                return Finding(
                    name: name, passed: false, detail: "\(SessionError.plainMQTT(url: config.broker.url))",
                    fix: "use the mqtts:// broker URL and TLS files `fleethub device add` writes")
            }
            var logger = Logger(label: "edge-runtime.check")
            logger.logLevel = .critical
            let client = try MQTTClient(MQTTConfiguration(
                host: address.host, port: address.port, clientId: "edge-runtime-check-\(config.deviceId)-\(getpid())",
                username: config.broker.username, password: config.broker.password,
                tls: address.tls
                    ? MQTTTLS(
                        caFile: config.broker.caFile ?? "/etc/ssl/certs/ca-certificates.crt",
                        certFile: config.broker.certFile, keyFile: config.broker.keyFile)
                    : nil,
                connectTimeout: .seconds(5), acknowledgementTimeout: .seconds(5), logger: logger))
            defer { client.disconnect() }
            try await client.connect()
            try await client.subscribe(Topics.desired(config.deviceId)) { _ in }
            return Finding(name: name, passed: true, detail: "\(address), subscribed to \(Topics.desired(config.deviceId))")
        } catch let error as MQTTError {
            let fix = switch error {
            case .connectionRefused: "check broker.username and broker.password, and that the hub created this device's broker user"
            case .subscriptionRefused: "the broker ACL must let this device read \(Topics.desired(config.deviceId))"
            default: "check broker.url, that the broker runs, and that the network/firewall lets this device reach it"
            }
            return Finding(name: name, passed: false, detail: "\(error)", fix: fix)
        } catch {
            return Finding(name: name, passed: false, detail: "\(error)", fix: "check broker.url and the TLS files in the config")
        }
    }

    private func bundleURL(_ config: DeviceConfig) async -> Finding {
        let name = "bundle URL reachable"
        guard let url = URL(string: config.hub.bundleBaseURL), url.scheme == "http" || url.scheme == "https" else {
            return Finding(
                name: name, passed: false, detail: "'\(config.hub.bundleBaseURL)' is not an http(s) URL",
                fix: "set hub.bundleBaseURL to the hub's address, e.g. http://hub.example:8080")
        }
        var request = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: 5)
        request.httpMethod = "HEAD"
        if let token = config.hub.token {
            request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        }
        do {
            let (_, response) = try await URLSession.shared.data(for: request)
            let status = (response as? HTTPURLResponse)?.statusCode ?? 0
            guard status < 500 else {
                return Finding(name: name, passed: false, detail: "\(url) answered HTTP \(status)", fix: "check the hub's logs")
            }
            return Finding(name: name, passed: true, detail: "\(url) answered HTTP \(status)")
        } catch {
            return Finding(
                name: name, passed: false, detail: "\(url): \(error.localizedDescription)",
                fix: "check that `fleethub serve` runs and that this device can reach \(url.host ?? "the hub")")
        }
    }

    private func diskSpace(_ config: DeviceConfig) -> Finding {
        let name = "disk space"
        var folder = DataDirectory(config: config).root
        while !FileManager.default.fileExists(atPath: folder.path) && folder.path != "/" {
            folder.deleteLastPathComponent()
        }
        guard let free = (try? FileManager.default.attributesOfFileSystem(forPath: folder.path))?[.systemFreeSize] as? NSNumber
        else {
            return Finding(name: name, passed: false, detail: "cannot read free space of \(folder.path)", fix: "check the data dir")
        }
        let mib = free.int64Value >> 20
        guard free.int64Value >= minimumFreeBytes else {
            return Finding(
                name: name, passed: false, detail: "\(mib) MiB free in \(folder.path)",
                fix: "free at least \(minimumFreeBytes >> 20) MiB or point dataDir to a larger disk")
        }
        return Finding(name: name, passed: true, detail: "\(mib) MiB free in \(folder.path)")
    }

    private func python() -> Finding {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for folder in path.split(separator: ":") {
            let candidate = "\(folder)/python3"
            if FileManager.default.isExecutableFile(atPath: candidate) {
                return Finding(name: "python3 available", passed: true, detail: candidate)
            }
        }
        return Finding(
            name: "python3 available", passed: false, detail: "no python3 in PATH (\(path))",
            fix: "install it (`apt-get install python3 python3-venv`); python-scoring modules need it")
    }
}
