import FleetCore
import Foundation
import NIOCore

/// One Python process running the scoring host for a module. It lives in a process
/// group of its own with a clean signal mask (Foundation's `Process` would pass on
/// the spawning thread's blocked signals), and talks over a socket at fd 3 that the
/// runtime reads on an event loop (`WorkerChannel`), so waiting for it holds no thread.
final class ScoringWorker: @unchecked Sendable {
    /// What a worker's `run` call came to.
    enum Outcome {
        case output(ScoringResponse)
        case raised([UInt8])
        /// The scoring host refused the request before `run`, as azmlinfsrv would.
        case rejected(RejectedRequest)
        /// The worker is gone; `timedOut` when the watchdog killed it.
        case died(timedOut: Bool)
    }

    let pid: pid_t
    /// The kernel's start time of the process, recorded with its pid (see `WorkerProcess`).
    let startTicks: UInt64?
    private let channel: WorkerChannel
    private let onReaped: @Sendable (pid_t) -> Void
    private let lock = NSLock()
    private var killedByWatchdog = false
    private var reaped = false
    private var exitStatus: Int32?

    /// Starts the process, its socket read on `eventLoop`; it is not ready before
    /// `waitUntilReady()` returned. `onReaped` gets the pid once the process has ended and was reaped.
    init(
        configuration: ScoringConfiguration, index: Int, eventLoop: any EventLoop,
        onReaped: @escaping @Sendable (pid_t) -> Void = { _ in }
    ) async throws(ScoringError) {
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw .startFailed(module: configuration.module, reason: "socketpair: \(String(cString: strerror(errno)))")
        }
        var childEnd = fds[1]
        if childEnd == Self.channelFD {
            childEnd = fcntl(fds[1], F_DUPFD_CLOEXEC, 4)
            Glibc.close(fds[1])
        }
        defer { Glibc.close(childEnd) }

        let arguments = [
            configuration.python, "-u", configuration.hostScript.path,
            "--module-dir", configuration.moduleDirectory.path, "--entry", configuration.entry,
            "--kind", configuration.kind.rawValue, "--channel-fd", String(Self.channelFD),
        ]
        var environment = ProcessInfo.processInfo.environment
        environment.merge(configuration.environment) { _, module in module }
        environment["AZUREML_MODEL_DIR"] = configuration.azureMLModelDirectory.path
        environment["MODEL_DIR"] = configuration.modelDirectory.path
        environment["AML_APP_ROOT"] = configuration.appRoot.path
        environment["FLEET_MODULE"] = configuration.module
        environment["FLEET_WORKER_INDEX"] = String(index)

        // Output goes through a pipe into the module's rotating log (or to the runtime's stderr).
        var output = ProcessSpawner.Output.parentStandardError
        var logPipe: [Int32] = [-1, -1]
        if configuration.log != nil {
            guard pipe(&logPipe) == 0 else {
                Glibc.close(fds[0])
                throw .startFailed(module: configuration.module, reason: "pipe: \(String(cString: strerror(errno)))")
            }
            for end in logPipe { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
            output = .descriptor(logPipe[1])
        }
        let pid: pid_t
        do {
            pid = try ProcessSpawner.spawn(
                arguments, environment: environment, output: output,
                descriptors: [Self.channelFD: childEnd], closeOthers: true)
        } catch {
            Glibc.close(fds[0])
            for end in logPipe where end >= 0 { Glibc.close(end) }
            throw .startFailed(
                module: configuration.module,
                reason: "cannot run \(configuration.python): \(error); check the module's Python environment")
        }
        if let log = configuration.log {
            Glibc.close(logPipe[1])
            LogPump.start(reading: logPipe[0], into: log)
        }
        // Right after the spawn, before the interpreter starts any thread (threads inherit it).
        if configuration.niceness != 0 { setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(pid), configuration.niceness) }
        do {
            self.channel = try await WorkerChannel.open(descriptor: fds[0], on: eventLoop)
        } catch {
            kill(-pid, SIGKILL)
            waitpid(pid, nil, 0)
            throw .startFailed(module: configuration.module, reason: "cannot read the worker's socket: \(error)")
        }
        self.pid = pid
        self.startTicks = ProcessTable.entry(pid: pid)?.startTicks
        self.onReaped = onReaped
    }

    deinit {
        channel.close()
    }

    /// The fd the scoring host reads its channel from.
    static let channelFD: Int32 = 3

    /// Kills the worker because it took too long; `score` and `waitUntilReady` then
    /// report a timeout rather than a crash.
    func killForTimeout() {
        lock.withLock { killedByWatchdog = true }
        kill(-pid, SIGKILL)
    }

    /// Waits until `init()` returned and gives the model's Open Inference metadata (JSON);
    /// throws if it raised, the process exited, or it took longer than `timeout` (the
    /// worker is then killed).
    func waitUntilReady(module: String, timeout: Duration) async throws(ScoringError) -> [UInt8] {
        let watchdog = channel.eventLoop.scheduleTask(in: TimeAmount(timeout)) { [self] in killForTimeout() }
        defer { watchdog.cancel() }
        switch await channel.receive() {
        case .ready(let metadata):
            return metadata
        case .initFailed(let json):
            let failure = PythonException(json: json)
            await stop()
            throw .startFailed(module: module, reason: "init() raised \(failure.type): \(failure.message)")
        case .closed, .output, .response, .raised, .rejected:
            if lock.withLock({ killedByWatchdog }) {
                await stop(grace: .zero)
                throw .startFailed(module: module, reason: "init() took longer than \(timeout)")
            }
            let ending = await exitDescription()
            throw .startFailed(module: module, reason: "the worker exited before init() returned (\(ending))")
        }
    }

    /// Runs one `/v1` score request; returns with the reply, or once the watchdog killed the worker.
    func score(_ body: [UInt8], headers: [(name: String, value: String)], timeout: Duration) async -> Outcome {
        await exchange(.score, head: Self.headerLines(headers), body: body, timeout: timeout)
    }

    /// Runs one Open Inference infer request; `model` is the frame's head (`inferenceHead`).
    func infer(_ body: [UInt8], model: [UInt8], timeout: Duration) async -> Outcome {
        await exchange(.infer, head: model, body: body, timeout: timeout)
    }

    /// The head of an infer request for model `name` at `version`: JSON `{"model_name", "model_version"}`.
    static func inferenceHead(name: String, version: String?) -> [UInt8] {
        var meta: [String: String] = ["model_name": name]
        meta["model_version"] = version
        return Array((try? JSONEncoder().encode(meta)) ?? Data("{}".utf8))
    }

    /// The head of a score request: its headers as HTTP/1 lines, `name: value\r\n` (HTTP
    /// allows no CR or LF in a name or a value).
    static func headerLines(_ headers: [(name: String, value: String)]) -> [UInt8] {
        var lines: [UInt8] = []
        lines.reserveCapacity(headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 })
        for (name, value) in headers {
            lines.append(contentsOf: name.utf8)
            lines.append(contentsOf: ": ".utf8)
            lines.append(contentsOf: value.utf8)
            lines.append(contentsOf: "\r\n".utf8)
        }
        return lines
    }

    private func exchange(_ request: WorkerChannel.Request, head: [UInt8], body: [UInt8], timeout: Duration) async -> Outcome {
        let reply = await channel.exchange(request, head: head, body: body, timeout: TimeAmount(timeout)) { [self] in
            killForTimeout()
        }
        switch reply {
        case .output(let json): return .output(.json(json))
        case .response(let frame):
            guard let response = ScoringResponse(frame: frame) else { return .raised(Self.unreadableResponse) }
            return .output(response)
        case .raised(let json): return .raised(json)
        case .rejected(let json): return .rejected(RejectedRequest(json: json))
        case .closed, .ready, .initFailed:
            return .died(timedOut: lock.withLock { killedByWatchdog })
        }
    }

    /// What a `H` frame that does not parse comes to: an exception of the scoring host.
    private static let unreadableResponse = Array(
        #"{"type": "ScoringHostError", "message": "the scoring host sent an HTTP response that does not parse"}"#.utf8)

    /// Asks the worker's process group to exit (SIGTERM) without waiting; safe to call
    /// while a request is in flight, which then ends.
    func terminate() {
        if !lock.withLock({ reaped }) { kill(-pid, SIGTERM) }
    }

    /// Kills the worker's process group (SIGTERM, then SIGKILL after `grace`) and reaps it,
    /// waiting on a dispatch thread (never on an event loop or a cooperative thread).
    func stop(grace: Duration = .seconds(2)) async {
        if lock.withLock({ reaped }) { return }
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                self.stopWaiting(grace: grace)
                continuation.resume()
            }
        }
    }

    private func stopWaiting(grace: Duration) {
        if lock.withLock({ reaped }) { return }
        channel.close()
        kill(-pid, SIGTERM)
        let deadline = ContinuousClock.now + grace
        while ContinuousClock.now < deadline {
            if reapIfExited() { return }
            usleep(5_000)
        }
        kill(-pid, SIGKILL)
        while !reapIfExited() { usleep(5_000) }
    }

    private func reapIfExited() -> Bool {
        let (ended, now) = lock.withLock { () -> (Bool, Bool) in
            if reaped { return (true, false) }
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid || (result < 0 && errno == ECHILD) {
                reaped = true
                exitStatus = status
                return (true, true)
            }
            return (false, false)
        }
        if now { onReaped(pid) }
        return ended
    }

    /// False once an idle worker's process has gone (its end of the channel closed);
    /// meaningless while a request is in flight.
    var isAlive: Bool { !lock.withLock({ reaped }) && channel.isOpenAtPeer }

    /// Reaps the worker and says how it ended: "exited with code N" or "killed by signal N".
    func exitDescription() async -> String {
        await stop(grace: .milliseconds(200))
        guard let status = lock.withLock({ exitStatus }) else { return "exit status unknown" }
        return ExitStatus(waitStatus: status).description
    }
}

/// An exception the scoring host reported as JSON `{"type", "message", "traceback"}`.
struct PythonException: Decodable {
    var type: String
    var message: String

    init(json: [UInt8]) {
        self = (try? JSONDecoder().decode(Self.self, from: Data(json)))
            ?? PythonException(type: "UnknownError", message: String(decoding: json, as: UTF8.self))
    }

    init(type: String, message: String) {
        self.type = type
        self.message = message
    }
}

/// A request the scoring host refused before `run` (JSON `{"status", "message"}`): 400 or
/// 415, with azmlinfsrv's message.
struct RejectedRequest: Decodable {
    var status: Int
    var message: String

    init(json: [UInt8]) {
        self = (try? JSONDecoder().decode(Self.self, from: Data(json)))
            ?? RejectedRequest(status: 400, message: String(decoding: json, as: UTF8.self))
    }

    init(status: Int, message: String) {
        self.status = status
        self.message = message
    }
}
