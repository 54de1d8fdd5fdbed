import FleetCore
import FleetTesting
import Foundation

/// A small real HTTP server on a free loopback port serving files from a folder, with
/// `Range` support (Python's `http.server`), that logs each request's path and Range;
/// with `bytesPerSecond` it sends bodies that slowly, like a device's thin link.
final class BundleServer: @unchecked Sendable {
    let folder: TemporaryDirectory
    let port: Int
    private let process: Process
    var baseURL: String { "http://127.0.0.1:\(port)" }

    private static let script = #"""
        import http.server, os, sys
        import time
        root, port, log, rate = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args): pass
            def do_HEAD(self): self.do_GET(head=True)
            def do_GET(self, head=False):
                with open(log, "a") as f: f.write("%s %s\n" % (self.path, self.headers.get("Range", "-")))
                path = os.path.join(root, self.path.rsplit("/", 1)[-1])
                if not os.path.isfile(path):
                    self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers(); return
                data = open(path, "rb").read()
                start, status = 0, 200
                r = self.headers.get("Range")
                if r and r.startswith("bytes=") and r[6:].endswith("-"):
                    start, status = int(r[6:-1]), 206
                self.send_response(status)
                if status == 206:
                    self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                if head: return
                if rate <= 0: self.wfile.write(data[start:]); return
                chunk = max(1, rate // 10)
                for offset in range(start, len(data), chunk):
                    self.wfile.write(data[offset:offset + chunk]); self.wfile.flush(); time.sleep(0.1)
        http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
        """#

    init(bytesPerSecond: Int = 0) throws {
        folder = try TemporaryDirectory(prefix: "bundle-server")
        port = try Fixtures.freePort()
        let scriptPath = folder.file("server.py")
        try Self.script.write(toFile: scriptPath, atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: folder.file("files"), withIntermediateDirectories: true)
        process = Process()
        process.executableURL = URL(fileURLWithPath: Fixtures.which("python3") ?? "/usr/bin/python3")
        process.arguments = [scriptPath, folder.file("files"), "\(port)", folder.file("requests.log"), "\(bytesPerSecond)"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        for _ in 0..<200 {
            if Fixtures.isListening(port: port) { break }
            usleep(20_000)
        }
        guard Fixtures.isListening(port: port) else {
            stop()
            throw FixtureError.commandFailed("python3 http.server", status: -1, stderr: "did not listen on \(port)")
        }
    }

    /// Serves `bundle` at `/v1/bundles/sha256:<hex>`.
    func serve(_ bundle: TestBundle) throws {
        try bundle.data.write(to: URL(fileURLWithPath: folder.file("files/\(bundle.digest)")))
    }

    /// Serves `data` where `bundle` is expected: a bundle whose digest does not match.
    func serve(_ data: Data, as bundle: TestBundle) throws {
        try data.write(to: URL(fileURLWithPath: folder.file("files/\(bundle.digest)")))
    }

    /// Each request as "path range".
    var requests: [String] {
        ((try? String(contentsOfFile: folder.file("requests.log"), encoding: .utf8)) ?? "")
            .split(separator: "\n").map(String.init)
    }

    /// Kills the server. SIGKILL, because a child started from a Swift concurrency thread
    /// inherits that thread's blocked signals, SIGTERM included.
    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    deinit { stop() }
}
