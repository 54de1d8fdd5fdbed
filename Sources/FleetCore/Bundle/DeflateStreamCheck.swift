import CZlib
import Foundation

/// Checks, before ZIPFoundation extracts anything, that every deflated entry's stream
/// ends within the compressed size its central-directory record gives. ZIPFoundation
/// 0.9 keeps reading past an entry's data until the stream ends and, at the end of the
/// file, loops forever on empty reads: a 657-byte archive found by `scripts/fuzz`
/// (FuzzBundle) hung the unpacking for good. Reads the archive's records itself (the
/// offsets are not public in ZIPFoundation) and inflates each stream within its bounds,
/// counting at most `maximumFileBytes` of output.
enum DeflateStreamCheck {
    static func verify(archive url: URL, maximumFileBytes: Int64) throws {
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            throw BundleError.unreadableArchive(path: url.path, reason: "\(error.localizedDescription)")
        }
        func fail(_ reason: String) -> BundleError { .unreadableArchive(path: url.path, reason: reason) }
        // Mapped, not copied: a bundle may hold a model of hundreds of megabytes.
        try data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
            try verify(bytes, maximumFileBytes: maximumFileBytes, fail: fail)
        }
    }

    private static func verify(
        _ bytes: UnsafeRawBufferPointer, maximumFileBytes: Int64, fail: (String) -> BundleError
    ) throws {
        func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
        func u32(_ at: Int) -> Int { u16(at) | u16(at + 2) << 16 }
        // The end-of-central-directory record: 22 bytes and a comment of up to 64 KiB.
        guard bytes.count >= 22,
            let end = stride(from: bytes.count - 22, through: max(0, bytes.count - 22 - 0xFFFF), by: -1)
                .first(where: { u32($0) == 0x0605_4b50 })
        else { throw fail("no end of central directory record") }
        let count = u16(end + 10)
        var record = u32(end + 16)
        for _ in 0..<count {
            guard record + 46 <= bytes.count, u32(record) == 0x0201_4b50 else { throw fail("a central directory record is cut short") }
            let method = u16(record + 10)
            let compressedSize = u32(record + 20)
            let localHeader = u32(record + 42)
            let name = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[record + 46..<min(bytes.count, record + 46 + u16(record + 28))]), as: UTF8.self)
            record += 46 + u16(record + 28) + u16(record + 30) + u16(record + 32)
            guard method == 8 else { continue }
            guard compressedSize != 0xFFFF_FFFF, localHeader != 0xFFFF_FFFF else { throw fail("\(name): ZIP64 entries are not accepted") }
            guard localHeader + 30 <= bytes.count, u32(localHeader) == 0x0403_4b50 else { throw fail("\(name): no local header at its offset") }
            let start = localHeader + 30 + u16(localHeader + 26) + u16(localHeader + 28)
            guard start + compressedSize <= bytes.count else { throw fail("\(name): its compressed data runs past the end of the archive") }
            try inflateWithin(bytes, start: start, count: compressedSize, maximumBytes: maximumFileBytes, name: name, fail: fail)
        }
    }

    /// Inflates `count` bytes from `start` into a scratch buffer: the stream must end
    /// within them, with at most `maximumBytes` of output.
    private static func inflateWithin(
        _ bytes: UnsafeRawBufferPointer, start: Int, count: Int, maximumBytes: Int64, name: String, fail: (String) -> BundleError
    ) throws {
        var stream = z_stream()
        guard inflateInit2_(&stream, -MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw fail("\(name): zlib cannot start")
        }
        defer { inflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: 1 << 16)
        var produced: Int64 = 0
        var status = Z_OK
        stream.next_in = UnsafeMutablePointer(mutating: bytes.baseAddress!.assumingMemoryBound(to: UInt8.self) + start)
        stream.avail_in = UInt32(count)
        while status == Z_OK {
            status = output.withUnsafeMutableBufferPointer { buffer in
                stream.next_out = buffer.baseAddress
                stream.avail_out = UInt32(buffer.count)
                return inflate(&stream, Z_NO_FLUSH)
            }
            produced += Int64(output.count) - Int64(stream.avail_out)
            if produced > maximumBytes { throw BundleError.fileTooLarge(path: name, limit: maximumBytes) }
        }
        guard status == Z_STREAM_END else {
            throw fail("\(name): its deflate stream does not end within its \(count) compressed bytes (zlib status \(status))")
        }
    }
}
