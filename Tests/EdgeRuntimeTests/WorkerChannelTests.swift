@testable import EdgeRuntime
import Foundation
import Synchronization
import Testing

/// The runtime's end of a scoring worker's socket, against a peer that plays the scoring
/// host by hand: frames cut anywhere, the request frame's layout, the timeout, the peer's exit.
struct WorkerChannelTests {
    /// A socketpair: the runtime's end goes to a `WorkerChannel`, the test keeps the other.
    private static func connected() async throws -> (channel: WorkerChannel, peer: Int32) {
        var fds: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        let channel = try await WorkerChannel.open(descriptor: fds[0], on: InferenceLoop.eventLoop)
        return (channel, fds[1])
    }

    private static func frame(_ kind: Character, _ payload: String) -> [UInt8] {
        let bytes = [kind.asciiValue!] + Array(payload.utf8)
        let length = UInt32(bytes.count)
        return [UInt8(length >> 24), UInt8((length >> 16) & 0xff), UInt8((length >> 8) & 0xff), UInt8(length & 0xff)] + bytes
    }

    private static func write(_ bytes: some Collection<UInt8>, to fd: Int32) {
        let bytes = Array(bytes)
        #expect(bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress!, $0.count) } == bytes.count)
    }

    private static func read(_ count: Int, from fd: Int32) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var offset = 0
        while offset < count {
            let received = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + offset, count - offset) }
            guard received > 0 else { break }
            offset += received
        }
        return Array(bytes[..<offset])
    }

    @Test func aFrameThatArrivesInPiecesIsOneReplyAndTheTaskResumesOnTheLoop() async throws {
        let (channel, peer) = try await Self.connected()
        defer { close(peer) }
        let ready = Self.frame("R", #"{"platform": "python"}"#)
        Self.write(ready.prefix(3), to: peer)
        let (reply, onLoop) = await withTaskExecutorPreference(InferenceLoop.executor) {
            async let reply = channel.receive()
            try? await Task.sleep(for: .milliseconds(50))
            Self.write(ready.dropFirst(3), to: peer)
            return (await reply, InferenceLoop.eventLoop.inEventLoop)
        }
        #expect(reply == .ready(Array(#"{"platform": "python"}"#.utf8)))
        #expect(onLoop)
    }

    @Test func aRequestIsOneFrameOfKindHeadAndBodyAndGetsTheReply() async throws {
        let (channel, peer) = try await Self.connected()
        defer { close(peer) }
        let head = Array("content-type: application/json\r\n".utf8)
        let body = Array(#"{"data": [1]}"#.utf8)
        async let reply = channel.exchange(.score, head: head, body: body, timeout: .seconds(10)) {}
        let length = Self.read(4, from: peer)
        #expect(length == [0, 0, 0, UInt8(head.count + body.count + 5)])
        let sent = Self.read(head.count + body.count + 5, from: peer)
        #expect(sent == [UInt8(ascii: "Q"), 0, 0, 0, UInt8(head.count)] + head + body)
        Self.write(Self.frame("O", "[1]"), to: peer)
        #expect(await reply == .output(Array("[1]".utf8)))
    }

    @Test func noReplyWithinTheTimeoutRunsOnTimeout() async throws {
        let (channel, peer) = try await Self.connected()
        let timedOut = Flag()
        // What the worker's watchdog does: kill the worker, whose end then closes.
        let reply = await channel.exchange(.score, head: [], body: [], timeout: .milliseconds(100)) {
            timedOut.value.store(true, ordering: .relaxed)
            close(peer)
        }
        #expect(reply == .closed)
        let fired = timedOut.value.load(ordering: .relaxed)
        #expect(fired)
    }

    @Test func aPeerThatExitsClosesTheChannel() async throws {
        let (channel, peer) = try await Self.connected()
        #expect(channel.isOpenAtPeer)
        close(peer)
        #expect(await channel.receive() == .closed)
        #expect(!channel.isOpenAtPeer)
        let reply = await channel.exchange(.infer, head: [], body: [], timeout: .seconds(10)) {}
        #expect(reply == .closed)
    }
}

private final class Flag: Sendable {
    let value = Atomic<Bool>(false)
}
