import FleetCore
import Foundation
import Logging

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
                fix: "write the file with `fleethub device config <id> --out \(configPath)` and make it readable by the runtime's user")]
        }
        var results = [Finding(name: "config readable", passed: true, detail: "\(configPath), device \(config.deviceId)")]
        let dataDirectory = DataDirectory(config: config)
        let desired: DesiredStateSource
        if let pid = DataDirectoryLock.holder(of: dataDirectory) {
            // A second connection with the device's identity would take the daemon's over.
            let observed = daemonSession(config, dataDirectory: dataDirectory, pid: pid)
            results.append(observed.broker)
            desired = observed.desired
        } else {
            let connected = await broker(config)
            results.append(connected.broker)
            desired = connected.desired
        }
        results.append(hubKey(config, desired: desired))
        results.append(await bundleDownload(config, desired: desired))
        results.append(diskSpace(config))
        results.append(python())
        return results
    }

    /// What the check knows of the hub's desired state for this device.
    private enum DesiredStateSource {
        /// The retained message on the desired topic (nil: none), read over the broker.
        case retained(Data?)
        /// The running daemon's record of the latest message, and the state it accepted last.
        case daemon(DesiredStateCheck?, accepted: DesiredState?)
        /// Not known: the broker could not be read.
        case unknown
    }

    private static let brokerCheck = "broker reachable and authorised"
    private static let hubKeyCheck = "hub key verifies the desired state"
    private static let bundleCheck = "bundle download authorised"

    private func daemonSession(_ config: DeviceConfig, dataDirectory: DataDirectory, pid: pid_t) -> (broker: Finding, desired: DesiredStateSource) {
        let session: SessionStatus?
        let accepted: DesiredState?
        do {
            let store = try StateStore(url: dataDirectory.database)
            session = try store.session()
            accepted = try store.acceptedDesiredState()
        } catch {
            return (Finding(
                name: Self.brokerCheck, passed: false, detail: "cannot read the running daemon's (pid \(pid)) state: \(error)",
                fix: "run `edge-runtime check` as the daemon's user"), .unknown)
        }
        let desired = DesiredStateSource.daemon(session?.lastDesiredState, accepted: accepted)
        guard let session else {
            return (Finding(
                name: Self.brokerCheck, passed: false, detail: "the running daemon (pid \(pid)) has not tried the broker yet",
                fix: "run the check again in a few seconds"), desired)
        }
        let since = session.since.formatted(.iso8601)
        guard session.connected else {
            return (Finding(
                name: Self.brokerCheck, passed: false,
                detail: "the running daemon (pid \(pid)) is not connected to \(session.broker) since \(since): \(session.reason ?? "no reason recorded")",
                fix: Self.brokerFix(reason: session.reason ?? "", deviceId: config.deviceId)), desired)
        }
        return (Finding(
            name: Self.brokerCheck, passed: true,
            detail: "the running daemon (pid \(pid)) is connected to \(session.broker) since \(since)"), desired)
    }

    private static func brokerFix(reason: String, deviceId: String) -> String {
        if reason.contains("not authorised") || reason.contains("bad user name") {
            return "check the device's certificate (broker.certFile, broker.keyFile) or broker.username and broker.password, and that the hub has not revoked this device"
        }
        if reason.lowercased().contains("refused") {
            return "nothing accepts connections at broker.url: start the broker, or correct broker.url"
        }
        return "check broker.url, that the broker runs, and that the network/firewall lets this device reach it"
    }

    private func broker(_ config: DeviceConfig) async -> (broker: Finding, desired: DesiredStateSource) {
        let name = Self.brokerCheck
        do {
            let address = try BrokerAddress(config.broker.url)
            if !address.tls && config.broker.insecure != true {
                return (Finding(
                    name: name, passed: false, detail: "\(SessionError.plainMQTT(url: config.broker.url))",
                    fix: "use the mqtts:// broker URL and TLS files `fleethub device add` writes"), .unknown)
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
            let retained = try await client.retainedMessages(Topics.desired(config.deviceId))
            return (
                Finding(name: name, passed: true, detail: "\(address), subscribed to \(Topics.desired(config.deviceId))"),
                .retained(retained.last?.payload))
        } catch let error as MQTTError {
            let fix = switch error {
            case .connectionRefused: "check the device's certificate or broker.username and broker.password, and that the hub created this device's broker user"
            case .subscriptionRefused: "the broker ACL must let this device read \(Topics.desired(config.deviceId))"
            default: Self.brokerFix(reason: "\(error)", deviceId: config.deviceId)
            }
            return (Finding(name: name, passed: false, detail: "\(error)", fix: fix), .unknown)
        } catch {
            return (Finding(name: name, passed: false, detail: "\(error)", fix: "check broker.url and the TLS files in the config"), .unknown)
        }
    }

    private func hubKey(_ config: DeviceConfig, desired: DesiredStateSource) -> Finding {
        let name = Self.hubKeyCheck
        let fix = "set hub.publicKey to the hub's key (`fleethub config show` prints it), or export the config again with `fleethub device config \(config.deviceId) --out FILE`"
        let key: HubPublicKey
        do {
            key = try HubPublicKey(base64: config.hub.publicKey)
        } catch {
            return Finding(name: name, passed: false, detail: "\(error)", fix: fix)
        }
        switch desired {
        case .unknown:
            return Finding(
                name: name, passed: false, detail: "key id \(key.keyId) is well formed, but the broker could not be read to verify it",
                fix: "fix the broker check first")
        case .retained(nil):
            return Finding(
                name: name, passed: true,
                detail: "key id \(key.keyId) is well formed; the hub has published nothing for this device yet to verify it against")
        case .retained(let payload?):
            if payload.isEmpty {
                return Finding(name: name, passed: true, detail: "key id \(key.keyId); the retained desired state is empty (device removed?)")
            }
            switch DesiredStateGate(deviceId: config.deviceId, hubKey: key).check(payload, acceptedRevision: 0) {
            case .success(let state):
                return Finding(name: name, passed: true, detail: "key id \(key.keyId) verifies the hub's desired state revision \(state.revision)")
            case .failure(let refusal):
                return Finding(
                    name: name, passed: false,
                    detail: "key id \(key.keyId) does not verify the hub's retained desired state: \(refusal)", fix: fix)
            }
        case .daemon(let check?, _) where !check.verified:
            return Finding(
                name: name, passed: false,
                detail: "the running daemon refused the hub's desired state of \(check.at.formatted(.iso8601)): \(check.refusal ?? "not verified")",
                fix: fix)
        case .daemon(let check?, _):
            let revision = check.revision.map { " revision \($0)" } ?? ""
            return Finding(
                name: name, passed: true,
                detail: "key id \(key.keyId) verified the hub's desired state\(revision) of \(check.at.formatted(.iso8601)) in the running daemon")
        case .daemon(nil, _):
            return Finding(
                name: name, passed: true,
                detail: "key id \(key.keyId) is well formed; the running daemon has received no desired state yet to verify it against")
        }
    }

    /// Downloads the first byte of a bundle the hub wants on this device, with the
    /// device's token: the hub's root answers 403 even to a good token, a bundle does not.
    private func bundleDownload(_ config: DeviceConfig, desired: DesiredStateSource) async -> Finding {
        let name = Self.bundleCheck
        guard let base = URL(string: config.hub.bundleBaseURL), base.scheme == "http" || base.scheme == "https" else {
            return Finding(
                name: name, passed: false, detail: "'\(config.hub.bundleBaseURL)' is not an http(s) URL",
                fix: "set hub.bundleBaseURL to the hub's public URL, e.g. https://hub.example:8080")
        }
        let state: DesiredState? = switch desired {
        case .retained(let payload?): try? HubPublicKey(base64: config.hub.publicKey).open(payload, for: config.deviceId)
        case .daemon(_, let accepted): accepted
        case .retained(nil), .unknown: nil
        }
        guard let token = config.hub.token else {
            return Finding(
                name: name, passed: false, detail: "the config has no hub.token, which bundle downloads need",
                fix: "export the config again with `fleethub device config \(config.deviceId) --out FILE`")
        }
        let bundle = state?.modules.lazy.flatMap { [$0.bundle] + ($0.shadow.map { [$0.bundle] } ?? []) }.first
        guard let bundle, let url = URL(string: bundle.url) else {
            let untried = if case .unknown = desired {
                "the desired state could not be read, so no bundle to try the token on"
            } else {
                "no bundle is deployed to this device yet, so the token is not tried"
            }
            return await reachability(of: base, config: config, token: token, untried: untried)
        }
        do {
            let status = try await Self.client(config).send(
                "GET", url, headers: [("Range", "bytes=0-0"), ("Authorization", "Bearer \(token)")], maxBody: 1
            ).status
            switch status {
            case 200, 206:
                return Finding(name: name, passed: true, detail: "\(url) answered HTTP \(status) to this device's token")
            case 401, 403:
                return Finding(
                    name: name, passed: false, detail: "\(url) answered HTTP \(status): the hub refuses this device's token",
                    fix: "hub.token is wrong, or was replaced or revoked: export the config again with `fleethub device config \(config.deviceId) --out FILE`")
            default:
                return Finding(
                    name: name, passed: false, detail: "\(url) answered HTTP \(status)",
                    fix: "check that hub.bundleBaseURL is this hub's public URL, and the hub's logs")
            }
        } catch {
            return Self.unreachable(url, error, deviceId: config.deviceId)
        }
    }

    /// A hub that did not answer; a certificate it was refused for says so.
    private static func unreachable(_ url: URL, _ error: any Error, deviceId: String) -> Finding {
        switch error as? HTTPRequestError {
        case .untrustedServer?, .unusableCAFile?:
            return Finding(
                name: bundleCheck, passed: false, detail: "\(error)",
                fix: "hub.caFile must be the CA that issued the hub's HTTPS certificate (the hub's own CA, or `fleethub config show`'s tls-ca): export the config again with `fleethub device config \(deviceId) --out FILE`; and hub.bundleBaseURL must be the hub's public URL, whose host the certificate names")
        default:
            return Finding(
                name: bundleCheck, passed: false, detail: "\(error)",
                fix: "check that `fleethub serve` runs and that this device can reach \(url.host ?? "the hub")")
        }
    }

    /// Trusts what the downloader trusts, with a short wait.
    private static func client(_ config: DeviceConfig) -> FleetHTTPClient {
        FleetHTTPClient(trust: .init(hubCAFile: config.hub.caFile), connectTimeout: .seconds(5), readTimeout: .seconds(5))
    }

    /// Without a bundle to try the token on, whether the hub answers at all.
    private func reachability(of base: URL, config: DeviceConfig, token: String, untried: String) async -> Finding {
        let name = Self.bundleCheck
        do {
            let status = try await Self.client(config).send("GET", base, headers: [("Authorization", "Bearer \(token)")], maxBody: 1)
                .status
            guard status < 500 else {
                return Finding(name: name, passed: false, detail: "\(base) answered HTTP \(status)", fix: "check the hub's logs")
            }
            return Finding(
                name: name, passed: true,
                detail: "\(base) answers (HTTP \(status)); \(untried)")
        } catch {
            return Self.unreachable(base, error, deviceId: config.deviceId)
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
