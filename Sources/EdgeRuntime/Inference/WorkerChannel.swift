import NIOCore
import NIOPosix
import Synchronization

/// The runtime's end of the Unix stream socket to one scoring worker, read and written on
/// an event loop (`InferenceLoop`) rather than blocking a thread of its own: a request
/// handled on that loop reaches the worker and gets its reply with no thread hand-off.
/// Frames are a 4-byte big-endian length, a one-byte kind and the payload (see
/// `scoring_host.py`); the scoring host answers one request at a time.
///
/// Its mutable state is only touched on the channel's event loop (NIO calls the handler
/// there, and every entry point hops there first), hence `@unchecked Sendable`.
final class WorkerChannel: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    /// A frame the scoring host sends.
    enum Reply: Equatable, Sendable {
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

    /// What a request frame asks of the scoring host.
    enum Request {
        /// A `/v1` score request (`Q`): the head is its headers as HTTP/1 lines, `name: value\r\n`.
        case score
        /// An Open Inference infer request (`V`): the head is JSON `{"model_name", "model_version"}`.
        case infer

        var kind: UInt8 { self == .score ? UInt8(ascii: "Q") : UInt8(ascii: "V") }
    }

    let eventLoop: any EventLoop
    private let open = Atomic<Bool>(true)
    // On `eventLoop` only:
    private var context: ChannelHandlerContext?
    private var unclaimed: [Reply] = []
    private var awaiting: EventLoopPromise<Reply>?

    private init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Takes over the connected socket `descriptor` and reads it on `eventLoop`; the
    /// descriptor is closed with the channel.
    static func open(descriptor: Int32, on eventLoop: any EventLoop) async throws -> WorkerChannel {
        let handler = WorkerChannel(eventLoop: eventLoop)
        _ = try await ClientBootstrap(group: eventLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(ByteToMessageHandler(FrameDecoder()), handler)
                }
            }
            .withConnectedSocket(descriptor)
            .get()
        return handler
    }

    /// Waits for the worker's next frame (the first is its `R` or `I` after `init()`).
    func receive() async -> Reply {
        await onLoop { self.nextReply() }
    }

    /// Sends a request frame — its kind, its head (after the head's 4-byte length) and
    /// body — and waits for the reply; `onTimeout` runs if none came within `timeout`.
    func exchange(
        _ request: Request, head: [UInt8], body: [UInt8], timeout: TimeAmount,
        onTimeout: @escaping @Sendable () -> Void
    ) async -> Reply {
        await onLoop {
            guard let context = self.context else { return self.eventLoop.makeSucceededFuture(.closed) }
            let reply = self.nextReply()
            var frame = context.channel.allocator.buffer(capacity: head.count + body.count + 9)
            frame.writeInteger(UInt32(head.count + body.count + 5))
            frame.writeInteger(request.kind)
            frame.writeInteger(UInt32(head.count))
            frame.writeBytes(head)
            frame.writeBytes(body)
            let watchdog = self.eventLoop.scheduleTask(in: timeout, onTimeout)
            reply.whenComplete { _ in watchdog.cancel() }
            context.writeAndFlush(NIOAny(frame)).whenFailure { _ in self.close() }
            return reply
        }
    }

    /// False once the worker closed its end (it exited or was killed): a worker sends
    /// nothing unasked, so only its exit ends the channel while it is idle.
    var isOpenAtPeer: Bool { open.load(ordering: .relaxed) }

    /// Closes the socket; later calls do nothing.
    func close() {
        eventLoop.execute { self.context?.close(promise: nil) }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        deliver(Self.reply(unwrapInboundIn(data)))
    }

    func channelInactive(context: ChannelHandlerContext) {
        open.store(false, ordering: .relaxed)
        self.context = nil
        deliver(.closed)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func onLoop(_ work: @escaping @Sendable () -> EventLoopFuture<Reply>) async -> Reply {
        let reply = eventLoop.inEventLoop ? work() : eventLoop.flatSubmit(work)
        return (try? await reply.get()) ?? .closed
    }

    /// The next reply: one that came unclaimed, or a promise of the coming one.
    private func nextReply() -> EventLoopFuture<Reply> {
        if !unclaimed.isEmpty { return eventLoop.makeSucceededFuture(unclaimed.removeFirst()) }
        if context == nil { return eventLoop.makeSucceededFuture(.closed) }
        let promise = eventLoop.makePromise(of: Reply.self)
        awaiting = promise
        return promise.futureResult
    }

    private func deliver(_ reply: Reply) {
        if let awaiting {
            self.awaiting = nil
            awaiting.succeed(reply)
        } else if reply != .closed {
            unclaimed.append(reply)
        }
    }

    private static func reply(_ frame: ByteBuffer) -> Reply {
        var frame = frame
        guard let kind = frame.readInteger(as: UInt8.self) else { return .closed }
        let payload = Array(frame.readableBytesView)
        switch kind {
        case UInt8(ascii: "R"): return .ready(payload)
        case UInt8(ascii: "I"): return .initFailed(payload)
        case UInt8(ascii: "O"): return .output(payload)
        case UInt8(ascii: "H"): return .response(payload)
        case UInt8(ascii: "E"): return .raised(payload)
        case UInt8(ascii: "B"): return .rejected(payload)
        default: return .closed
        }
    }

    /// Cuts the stream into frames: a 4-byte big-endian length, then that many bytes.
    private struct FrameDecoder: ByteToMessageDecoder {
        typealias InboundOut = ByteBuffer

        mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
            guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self),
                buffer.readableBytes >= 4 + Int(length)
            else { return .needMoreData }
            buffer.moveReaderIndex(forwardBy: 4)
            context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: Int(length))!))
            return .continue
        }

        mutating func decodeLast(
            context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool
        ) throws -> DecodingState {
            try decode(context: context, buffer: &buffer)
        }
    }
}
