import Foundation
import X509

/// The list of every certificate the hub's CA issued, kept in the `index.txt` format
/// of `openssl ca` (tab-separated: status, expiry, revocation date, serial, file,
/// subject) so `openssl ca -gencrl` builds the revocation list from it directly.
public struct CertificateIndex: Sendable {
    public let path: String

    public struct Entry: Equatable, Sendable {
        public enum Status: String, Sendable {
            case valid = "V"
            case revoked = "R"
            case expired = "E"
        }

        public var status: Status
        public var expiry: Date
        public var revokedAt: Date?
        /// Upper-case hex, as OpenSSL writes it.
        public var serial: String
        public var commonName: String

        var line: String {
            [status.rawValue, CertificateIndex.time(expiry), revokedAt.map(CertificateIndex.time) ?? "", serial,
             "unknown", "/CN=\(commonName)"].joined(separator: "\t")
        }

        init(status: Status, expiry: Date, revokedAt: Date?, serial: String, commonName: String) {
            self.status = status
            self.expiry = expiry
            self.revokedAt = revokedAt
            self.serial = serial
            self.commonName = commonName
        }

        init?(line: Substring) {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count == 6, let status = Status(rawValue: String(fields[0])),
                let expiry = CertificateIndex.date(fields[1]), fields[5].hasPrefix("/CN=")
            else { return nil }
            self.init(
                status: status, expiry: expiry, revokedAt: CertificateIndex.date(fields[2]), serial: String(fields[3]),
                commonName: String(fields[5].dropFirst(4)))
        }
    }

    func create() throws {
        try Data().write(to: URL(fileURLWithPath: path))
        // `openssl ca` would refuse a second certificate with the same subject without this.
        try Data("unique_subject = no\n".utf8).write(to: URL(fileURLWithPath: path + ".attr"))
    }

    public func entries() throws -> [Entry] {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw SecurityError.unreadable(path, reason: error.localizedDescription)
        }
        return try text.split(separator: "\n").map { line in
            guard let entry = Entry(line: line) else { throw SecurityError.unreadable(path, reason: "bad line '\(line)'") }
            return entry
        }
    }

    func append(_ entry: Entry) throws {
        try exclusively { try save(try entries() + [entry]) }
    }

    /// Marks every valid certificate of `commonName` revoked; returns their serials.
    func revoke(commonName: String, at date: Date) throws -> [String] {
        try exclusively { try markRevoked(commonName: commonName, at: date) }
    }

    private func markRevoked(commonName: String, at date: Date) throws -> [String] {
        var entries = try entries()
        var revoked: [String] = []
        for index in entries.indices where entries[index].commonName == commonName && entries[index].status == .valid {
            entries[index].status = .revoked
            entries[index].revokedAt = date
            revoked.append(entries[index].serial)
        }
        guard !revoked.isEmpty else { throw SecurityError.nothingToRevoke(commonName) }
        try save(entries)
        return revoked
    }

    /// Runs `body` holding an exclusive lock on the index, so two commands issuing
    /// certificates at once cannot lose an entry (a lost entry could never be revoked).
    private func exclusively<T>(_ body: () throws -> T) throws -> T {
        let descriptor = open(path + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw SecurityError.unreadable(path + ".lock", reason: String(cString: strerror(errno))) }
        defer { close(descriptor) }
        guard flock(descriptor, LOCK_EX) == 0 else {
            throw SecurityError.unreadable(path + ".lock", reason: String(cString: strerror(errno)))
        }
        defer { flock(descriptor, LOCK_UN) }
        return try body()
    }

    private func save(_ entries: [Entry]) throws {
        let text = entries.map(\.line).map { $0 + "\n" }.joined()
        try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    static func hex(_ serial: Certificate.SerialNumber) -> String {
        var bytes = Array(serial.bytes.drop { $0 == 0 })
        if bytes.isEmpty { bytes = [0] }
        return bytes.map { String(format: "%02X", $0) }.joined()
    }

    private static let formatter: DateFormatter = {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyMMddHHmmss'Z'"
        return formatter
    }()

    static func time(_ date: Date) -> String { formatter.string(from: date) }
    static func date(_ text: Substring) -> Date? { text.isEmpty ? nil : formatter.date(from: String(text)) }
}
