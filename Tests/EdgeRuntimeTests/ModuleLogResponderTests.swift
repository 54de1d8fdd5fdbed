@testable import EdgeRuntime
import FleetCore
import FleetTesting
import Foundation
import Testing

/// The device's side of `fleethub device logs`: what it answers to each request.
@Suite struct ModuleLogResponderTests {
    let directory: TemporaryDirectory
    let responder: ModuleLogResponder

    init() throws {
        directory = try TemporaryDirectory(prefix: "log-responder")
        let dataDirectory = DataDirectory(directory.url)
        try dataDirectory.create()
        let log = RotatingLog(url: dataDirectory.log(of: "agent"), maximumBytes: 1 << 30, keep: 1)
        for index in 1...3 { log.write(Data("line \(index)\n".utf8)) }
        log.write(Data((String(repeating: "x", count: ModuleLogReply.maximumBytes - 10) + "\n").utf8))
        log.write(Data("last\n".utf8))
        log.close()
        responder = ModuleLogResponder(dataDirectory: dataDirectory) { ["agent", "scorer"] }
    }

    func reply(_ module: String, lines: Int, expiresIn seconds: Double = 10, id: String = "r-1") throws -> (String, ModuleLogReply)? {
        let request = ModuleLogRequest(id: id, module: module, lines: lines, expiresAt: Date().addingTimeInterval(seconds))
        return responder.reply(to: try FleetJSON.encode(request)).map { ($0.requestId, $0.reply) }
    }

    @Test func sendsTheLastLinesOldestFirst() throws {
        let (id, answer) = try #require(try reply("agent", lines: 1))
        #expect(id == "r-1" && answer == ModuleLogReply(id: "r-1", module: "agent", lines: ["last"]))
    }

    @Test func leavesOutTheOldestLinesBeyondTheReplyLimit() throws {
        let (_, answer) = try #require(try reply("agent", lines: 100))
        #expect(answer.truncated && answer.lines.count == 2 && answer.lines.last == "last")
        #expect(answer.lines.reduce(0) { $0 + $1.utf8.count + 1 } <= ModuleLogReply.maximumBytes)
    }

    @Test func namesTheModulesItRunsForOneWithoutALog() throws {
        let (_, answer) = try #require(try reply("iris", lines: 10))
        #expect(answer.lines.isEmpty && answer.error == "module iris has no log on this device; it runs agent, scorer")
    }

    @Test func refusesAPathInsteadOfAModuleName() throws {
        let (_, answer) = try #require(try reply("../state", lines: 10))
        #expect(answer.lines.isEmpty && answer.error?.contains("is not a module name") == true)
    }

    @Test func refusesALineCountOutOfRange() throws {
        let (_, answer) = try #require(try reply("agent", lines: 0))
        #expect(answer.error == "cannot send 0 lines: ask for 1 to \(ModuleLogRequest.maximumLines)")
    }

    @Test func ignoresAnExpiredRequestOrOneWhoseIdCannotNameATopic() throws {
        #expect(try reply("agent", lines: 1, expiresIn: -1) == nil)
        #expect(try reply("agent", lines: 1, id: "a/#") == nil)
        #expect(responder.reply(to: Data("not json".utf8)) == nil)
    }
}
