import CZlib
import Foundation

/// gzip (RFC 1952) over zlib (the `CZlib` module map that ZIPFoundation ships), so that telemetry objects are `.jsonl.gz` files any tool can read.
public enum Gzip {
    /// Compresses `data` into one gzip member.
    public static func compress(_ data: Data, level: Int32 = Z_DEFAULT_COMPRESSION) throws -> Data {
        var stream = z_stream()
        // windowBits 15 + 16 asks zlib for a gzip header and trailer instead of a zlib one.
        var status = deflateInit2_(
            &stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else { throw GzipError.zlib(operation: "deflateInit2", status: status) }
        defer { deflateEnd(&stream) }

        var output = Data(count: Int(deflateBound(&stream, uLong(data.count))) + 32)
        let produced: Int = try data.withUnsafeBytes { (input: UnsafeRawBufferPointer) in
            try output.withUnsafeMutableBytes { (out: UnsafeMutableRawBufferPointer) in
                stream.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
                stream.avail_in = uInt(input.count)
                stream.next_out = out.bindMemory(to: Bytef.self).baseAddress
                stream.avail_out = uInt(out.count)
                status = deflate(&stream, Z_FINISH)
                guard status == Z_STREAM_END else { throw GzipError.zlib(operation: "deflate", status: status) }
                return Int(stream.total_out)
            }
        }
        output.count = produced
        return output
    }

    /// Decompresses every gzip member of `data` and returns the concatenated content.
    public static func decompress(_ data: Data) throws -> Data {
        var stream = z_stream()
        var status = inflateInit2_(&stream, 15 + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else { throw GzipError.zlib(operation: "inflateInit2", status: status) }
        defer { inflateEnd(&stream) }

        var output = Data()
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        try data.withUnsafeBytes { (input: UnsafeRawBufferPointer) in
            stream.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
            stream.avail_in = uInt(input.count)
            repeat {
                let produced: Int = chunk.withUnsafeMutableBufferPointer { buffer in
                    stream.next_out = buffer.baseAddress
                    stream.avail_out = uInt(buffer.count)
                    status = inflate(&stream, Z_NO_FLUSH)
                    return buffer.count - Int(stream.avail_out)
                }
                output.append(contentsOf: chunk[0..<produced])
                if status == Z_STREAM_END, stream.avail_in > 0 {
                    status = inflateReset(&stream)
                }
            } while status == Z_OK
            guard status == Z_STREAM_END else { throw GzipError.zlib(operation: "inflate", status: status) }
        }
        return output
    }
}

/// zlib refused the data; `status` is zlib's return code (e.g. -3 Z_DATA_ERROR: not gzip or corrupt).
public enum GzipError: Error, CustomStringConvertible, Equatable {
    case zlib(operation: String, status: Int32)

    public var description: String {
        switch self {
        case .zlib(let operation, let status):
            "gzip: zlib \(operation) failed with status \(status) (-3 means the input is not gzip data or is corrupt)"
        }
    }
}
