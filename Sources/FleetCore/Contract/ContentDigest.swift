import Crypto
import Foundation

/// A content address, `sha256:<64 lowercase hex digits>`: the identity of a bundle,
/// a model file or any blob, so that equal content is stored and shipped once.
public struct ContentDigest: Hashable, Comparable, Codable, Sendable, CustomStringConvertible {
    /// The 64 lowercase hex digits.
    public let hex: String

    public var description: String { "sha256:\(hex)" }

    /// The digest of `data`.
    public init(of data: Data) {
        hex = SHA256.hash(data: data).hexString
    }

    /// Parses `sha256:<hex>`; nil when `text` is anything else.
    public init?(_ text: String) {
        guard text.hasPrefix("sha256:") else { return nil }
        let hex = String(text.dropFirst("sha256:".count))
        guard hex.count == 64, hex.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else { return nil }
        self.hex = hex
    }

    /// Parses bare hex digits (as in `module.json` file entries).
    public init?(hex: String) {
        self.init("sha256:\(hex)")
    }

    /// The digest of the file at `url`, read in chunks so large files need little memory;
    /// `progress` gets the bytes read so far after each chunk.
    public init(ofFileAt url: URL, progress: (Int64) -> Void = { _ in }) throws {
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        var hasher = SHA256()
        var read: Int64 = 0
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            hasher.update(data: chunk)
            read += Int64(chunk.count)
            progress(read)
        }
        hex = hasher.finalize().hexString
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let digest = ContentDigest(text) else {
            throw DecodingError.dataCorrupted(.init(
                codingPath: decoder.codingPath,
                debugDescription: "'\(text)' is not a content digest; expected sha256: and 64 lowercase hex digits"))
        }
        self = digest
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    public static func < (lhs: ContentDigest, rhs: ContentDigest) -> Bool { lhs.hex < rhs.hex }
}

extension Sequence where Element == UInt8 {
    /// Lowercase hex of these bytes.
    public var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(underestimatedCount * 2)
        for byte in self {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
