import CZlib
import Foundation

/// gzip (RFC 1952) over zlib (the `CZlib` module map that ZIPFoundation ships), so that telemetry objects are `.jsonl.gz` files any tool can read.
public enum Gzip {
    /// Compresses `data` into one gzip member.
    public static func compress(_ data: Data, level: Int32 = Z_DEFAULT_COMPRESSION) throws -> Data {
        let stream = try GzipStream(level: level)
        try stream.append(data)
        return try stream.finish()
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

/// One gzip member compressed piece by piece, so that a large telemetry batch never needs its whole
/// uncompressed text in memory: only the compressed output grows.
public final class GzipStream {
    /// zlib keeps a pointer back to its `z_stream`, so the struct lives at one address for its whole life.
    private let stream: UnsafeMutablePointer<z_stream>
    private var output = Data()
    private var chunk = [UInt8](repeating: 0, count: 64 * 1024)
    private var finished = false

    public init(level: Int32 = Z_DEFAULT_COMPRESSION) throws {
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        // windowBits 15 + 16 asks zlib for a gzip header and trailer instead of a zlib one.
        let status = deflateInit2_(
            stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            stream.deallocate()
            throw GzipError.zlib(operation: "deflateInit2", status: status)
        }
    }

    deinit {
        deflateEnd(stream)
        stream.deallocate()
    }

    /// The compressed size so far (zlib holds back some input until it has a block).
    public var compressedCount: Int { output.count }

    /// Compresses `data` after what came before.
    public func append(_ data: Data) throws {
        precondition(!finished, "GzipStream.append after finish")
        try deflate(data, flush: Z_NO_FLUSH)
    }

    /// Ends the member and returns the whole compressed output.
    public func finish() throws -> Data {
        precondition(!finished, "GzipStream.finish called twice")
        try deflate(Data(), flush: Z_FINISH)
        finished = true
        return output
    }

    private func deflate(_ data: Data, flush: Int32) throws {
        try data.withUnsafeBytes { (input: UnsafeRawBufferPointer) in
            stream.pointee.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
            stream.pointee.avail_in = uInt(input.count)
            while true {
                let (status, produced) = chunk.withUnsafeMutableBufferPointer { buffer in
                    stream.pointee.next_out = buffer.baseAddress
                    stream.pointee.avail_out = uInt(buffer.count)
                    let status = CZlib.deflate(stream, flush)
                    return (status, buffer.count - Int(stream.pointee.avail_out))
                }
                guard status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR else {
                    throw GzipError.zlib(operation: "deflate", status: status)
                }
                output.append(contentsOf: chunk[0..<produced])
                // Done when zlib ended the member, or (before the end) when it left room in the chunk:
                // it took all the input.
                if flush == Z_FINISH ? status == Z_STREAM_END : stream.pointee.avail_out != 0 { return }
            }
        }
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
