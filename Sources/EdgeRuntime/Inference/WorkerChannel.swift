import Foundation

/// The runtime's end of the Unix stream socket to one scoring worker. Frames are a
/// 4-byte big-endian length, a one-byte kind and the payload (see `scoring_host.py`).
/// Calls block; `ScoringWorker` makes them on its own dispatch queue.
final class WorkerChannel: @unchecked Sendable {
    /// A frame the scoring host sends.
    enum Reply: Equatable {
        /// `init()` returned; the JSON is the model's Open Inference metadata.
        case ready([UInt8])
        /// `init()` raised; the JSON describes the exception.
        case initFailed([UInt8])
        /// `run` returned this JSON.
        case output([UInt8])
        /// `run` returned an HTTP response of its own (see `ScoringResponse(frame:)`).
        case response([UInt8])
        /// `run` raised; the JSON describes the exception.
        case raised([UInt8])
        /// The request was refused before `run`; the JSON gives the status and message.
        case rejected([UInt8])
        /// The worker closed the channel (it exited or was killed).
        case closed
    }

    private let fd: Int32
    private let lock = NSLock()
    private var closed = false

    init(fd: Int32) {
        self.fd = fd
    }

    /// What a request frame asks of the scoring host.
    enum Request {
        /// A `/v1` score request (`Q`): the head is its headers, JSON `[[name, value], …]`.
        case score
        /// An Open Inference infer request (`V`): the head is JSON `{"model_name", "model_version"}`.
        case infer
    }

    /// Sends a request frame: its kind, its head (after the head's 4-byte length) and body;
    /// false when the worker is gone.
    func sendFrame(_ request: Request, head headerJSON: [UInt8], body: [UInt8]) -> Bool {
        var frame = [UInt8]()
        frame.reserveCapacity(body.count + headerJSON.count + 9)
        frame.append(contentsOf: Self.bigEndian(UInt32(body.count + headerJSON.count + 5)))
        frame.append(UInt8(ascii: request == .score ? "Q" : "V"))
        frame.append(contentsOf: Self.bigEndian(UInt32(headerJSON.count)))
        frame.append(contentsOf: headerJSON)
        frame.append(contentsOf: body)
        return frame.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let sent = send(fd, buffer.baseAddress! + offset, buffer.count - offset, Int32(MSG_NOSIGNAL))
                if sent < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += sent
            }
            return true
        }
    }

    /// Waits for the worker's next frame.
    func receive() -> Reply {
        guard let header = readExactly(4) else { return .closed }
        let length = Int(header[0]) << 24 | Int(header[1]) << 16 | Int(header[2]) << 8 | Int(header[3])
        guard length >= 1, let frame = readExactly(length) else { return .closed }
        let payload = Array(frame[1...])
        switch frame[0] {
        case UInt8(ascii: "R"): return .ready(payload)
        case UInt8(ascii: "I"): return .initFailed(payload)
        case UInt8(ascii: "O"): return .output(payload)
        case UInt8(ascii: "H"): return .response(payload)
        case UInt8(ascii: "E"): return .raised(payload)
        case UInt8(ascii: "B"): return .rejected(payload)
        default: return .closed
        }
    }

    /// False when the worker closed its end (it exited or was killed), seen without
    /// reading: a worker sends nothing unasked, so pending bytes mean it is still there.
    var isOpenAtPeer: Bool {
        var byte: UInt8 = 0
        let received = lock.withLock { closed ? 0 : recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) }
        return received > 0 || (received < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    }

    /// Closes the socket once; later calls do nothing.
    func close() {
        let first = lock.withLock { () -> Bool in
            defer { closed = true }
            return !closed
        }
        if first { _ = Glibc.close(fd) }
    }

    private static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xff), UInt8((value >> 8) & 0xff), UInt8(value & 0xff)]
    }

    private func readExactly(_ count: Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var offset = 0
        while offset < count {
            let received = bytes.withUnsafeMutableBytes { buffer in
                read(fd, buffer.baseAddress! + offset, count - offset)
            }
            if received < 0 && errno == EINTR { continue }
            if received <= 0 { return nil }
            offset += received
        }
        return bytes
    }
}
