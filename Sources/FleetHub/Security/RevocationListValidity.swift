import Foundation
import SwiftASN1

/// When a certificate revocation list stops being valid. Once a list the broker checks
/// is past its `nextUpdate`, the broker refuses every client, devices and hub alike, so
/// the hub renews the list ahead of time and warns before it lapses.
public struct RevocationListValidity: Equatable, Sendable {
    public var path: String
    public var nextUpdate: Date

    /// Reads `nextUpdate` from a PEM-encoded CRL (RFC 5280 §5.1).
    public static func read(_ path: String) throws -> RevocationListValidity {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw SecurityError.unreadable(path, reason: error.localizedDescription)
        }
        do {
            return RevocationListValidity(path: path, nextUpdate: try nextUpdate(pem: text, path: path))
        } catch let error as SecurityError {
            throw error
        } catch {
            throw SecurityError.invalidRevocationList(path, reason: "\(error)")
        }
    }

    static func nextUpdate(pem: String, path: String) throws -> Date {
        let document = try PEMDocument(pemString: pem)
        guard document.discriminator == "X509 CRL" else {
            throw SecurityError.invalidRevocationList(path, reason: "a PEM '\(document.discriminator)', not an 'X509 CRL'")
        }
        // CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signature }; the
        // tbsCertList's only top-level times are thisUpdate and then nextUpdate.
        guard case .constructed(let list) = try DER.parse(document.derBytes).content,
            let tbs = list.first(where: { _ in true }), case .constructed(let fields) = tbs.content
        else { throw SecurityError.invalidRevocationList(path, reason: "not a CertificateList") }
        let times = try fields.compactMap { node -> Date? in
            switch node.identifier {
            case .utcTime:
                let time = try UTCTime(derEncoded: node)
                return date(time.year, time.month, time.day, time.hours, time.minutes, time.seconds)
            case .generalizedTime:
                let time = try GeneralizedTime(derEncoded: node)
                return date(time.year, time.month, time.day, time.hours, time.minutes, time.seconds)
            default: return nil
            }
        }
        guard times.count == 2 else {
            throw SecurityError.invalidRevocationList(path, reason: "it has no nextUpdate, so nothing says when to renew it")
        }
        return times[1]
    }

    private static func date(_ year: Int, _ month: Int, _ day: Int, _ hour: Int, _ minute: Int, _ second: Int) -> Date? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar.date(
            from: DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second))
    }
}
