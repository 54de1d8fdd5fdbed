import FleetCore
import Foundation
import Logging

/// Keeps the revocation list the broker checks from lapsing, which would lock every
/// device out at once: `fleethub serve` renews it well before its `nextUpdate`, in the
/// CA and in the folder `broker-config` last wrote, and `fleethub alerts` warns when a
/// list is close to lapsing (a hub whose `serve` was not running, or a list written by
/// hand).
public struct RevocationListRenewal: Sendable {
    /// `serve` renews a list that lapses within this time.
    public static let renewAhead: TimeInterval = 60 * 86_400
    /// `fleethub alerts` warns about a list that lapses within this time.
    public static let warnAhead: TimeInterval = 30 * 86_400

    public let workspace: Workspace

    public init(workspace: Workspace) {
        self.workspace = workspace
    }

    /// The lists the broker may check: the CA's own and the broker folder's copy. None
    /// for a hub without a CA (a plain-MQTT test setup).
    public func lists() throws -> [RevocationListValidity] {
        guard CertificateAuthority.exists(in: workspace.certificateAuthorityFolder) else { return [] }
        return try paths().map { try RevocationListValidity.read($0) }
    }

    /// Rewrites the CA's list (valid for `validityDays`) and copies it into the broker
    /// folder. Returns the paths written.
    @discardableResult
    public func renew(validityDays: Int = CertificateAuthority.revocationListValidityDays) throws -> [String] {
        let authority = try workspace.certificateAuthority()
        try authority.writeRevocationList(validityDays: validityDays)
        guard let folder = try workspace.config().brokerFolder else { return [authority.revocationListPath] }
        let copy = URL(fileURLWithPath: folder).appendingPathComponent("crl.pem")
        try Data(contentsOf: URL(fileURLWithPath: authority.revocationListPath)).write(to: copy, options: .atomic)
        return [authority.revocationListPath, copy.path]
    }

    /// Renews every list when one lapses within `renewAhead`; returns the paths written,
    /// none when nothing was due.
    public func renewIfDue(now: Date = Date()) throws -> [String] {
        let due = try lists().contains { $0.nextUpdate.timeIntervalSince(now) < Self.renewAhead }
        return due ? try renew() : []
    }

    /// A warning per list that lapses within `warnAhead` or cannot be read.
    public func alerts(now: Date = Date()) -> [HealthAlert] {
        guard CertificateAuthority.exists(in: workspace.certificateAuthorityFolder) else { return [] }
        let fix = "run `fleethub ca crl` (or keep `fleethub serve` running, which renews it \(Int(Self.renewAhead / 86_400)) days ahead), then restart the broker: it reads the list only at start"
        let paths: [String]
        do {
            paths = try self.paths()
        } catch {
            return [HealthAlert(kind: .revocationListExpiring, subject: "ca", message: "\(error)")]
        }
        return paths.compactMap { path in
            let validity: RevocationListValidity
            do {
                validity = try RevocationListValidity.read(path)
            } catch {
                return HealthAlert(kind: .revocationListExpiring, subject: path, message: "\(error); \(fix)")
            }
            let left = validity.nextUpdate.timeIntervalSince(now)
            guard left < Self.warnAhead else { return nil }
            let when = left <= 0 ? "lapsed on" : "lapses in \(Int((left / 86_400).rounded(.up))) days, on"
            return HealthAlert(
                kind: .revocationListExpiring, subject: path,
                message: "the revocation list \(path) \(when) \(validity.nextUpdate.formatted(.iso8601)); the broker then refuses every device and the hub; \(fix)")
        }
    }

    /// Checks now and then every `interval` until cancelled, logging each renewal and
    /// each failure (a failure is retried at the next check).
    public func run(every interval: Duration = .seconds(3600), logger: Logger = Logger(label: "fleethub.ca")) async throws {
        while !Task.isCancelled {
            do {
                for path in try renewIfDue() {
                    logger.notice("renewed the revocation list \(path); restart the broker for it to take effect")
                }
            } catch {
                logger.error("cannot renew the revocation list: \(error)")
            }
            try await Task.sleep(for: interval)
        }
    }

    /// Found without opening the CA: the dashboard's overview asks on every refresh.
    private func paths() throws -> [String] {
        let own = CertificateAuthority.revocationListPath(in: workspace.certificateAuthorityFolder)
        guard let folder = try workspace.config().brokerFolder else { return [own] }
        return [own, URL(fileURLWithPath: folder).appendingPathComponent("crl.pem").path]
    }
}
