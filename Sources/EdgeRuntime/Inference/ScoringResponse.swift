import Foundation

/// What a scoring request answers: `run`'s result as JSON with 200, or — when `run`
/// returned an HTTP response of its own (azmlinfsrv's `AMLResponse`, as `@rawhttp` scripts
/// do) — that response's status, headers and body, which azmlinfsrv passes on as they are.
public struct ScoringResponse: Sendable {
    public var status: Int
    /// Response headers; `Content-Type: application/json` for a JSON result.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(name: String, value: String)], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// `run`'s result, serialised to JSON by the scoring host.
    static func json(_ body: [UInt8]) -> ScoringResponse {
        ScoringResponse(status: 200, headers: [(name: "content-type", value: "application/json")], body: body)
    }

    /// A `H` frame's payload: a 4-byte big-endian length, JSON `{"status", "headers"}`, the body.
    init?(frame: [UInt8]) {
        guard frame.count >= 4 else { return nil }
        let length = Int(frame[0]) << 24 | Int(frame[1]) << 16 | Int(frame[2]) << 8 | Int(frame[3])
        guard frame.count >= 4 + length,
            let head = try? JSONDecoder().decode(Head.self, from: Data(frame[4..<(4 + length)]))
        else { return nil }
        self.init(
            status: head.status, headers: head.headers.compactMap { $0.count == 2 ? (name: $0[0], value: $0[1]) : nil },
            body: Array(frame[(4 + length)...]))
    }

    private struct Head: Decodable {
        var status: Int
        var headers: [[String]]
    }
}
