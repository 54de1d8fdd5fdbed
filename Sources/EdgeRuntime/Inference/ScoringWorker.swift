import FleetCore
import Foundation

/// One Python process running the scoring host for a module. It lives in a process
/// group of its own with a clean signal mask (Foundation's `Process` would pass on
/// the spawning thread's blocked signals), and talks over a socket at fd 3.
/// Its blocking calls run on `queue`, never on Swift's cooperative threads.
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
    let queue: DispatchQueue
    private let channel: WorkerChannel
    private let onReaped: @Sendable (pid_t) -> Void
    private let lock = NSLock()
    private var killedByWatchdog = false
    private var reaped = false
    private var exitStatus: Int32?

    /// Starts the process; it is not ready before `waitUntilReady()` returned.
    /// `onReaped` gets the pid once the process has ended and was reaped.
    init(configuration: ScoringConfiguration, index: Int, onReaped: @escaping @Sendable (pid_t) -> Void = { _ in }) throws(ScoringError) {
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
        self.pid = pid
        self.startTicks = ProcessTable.entry(pid: pid)?.startTicks
        self.onReaped = onReaped
        self.channel = WorkerChannel(fd: fds[0])
        self.queue = DispatchQueue(label: "scoring.\(configuration.module).\(index)")
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

    /// Blocks until `init()` returned and gives the model's Open Inference metadata (JSON);
    /// throws if it raised, the process exited, or `killForTimeout()` ended it.
    func waitUntilReady(module: String, timeout: Duration) throws(ScoringError) -> [UInt8] {
        switch channel.receive() {
        case .ready(let metadata):
            return metadata
        case .initFailed(let json):
            let failure = PythonException(json: json)
            stop()
            throw .startFailed(module: module, reason: "init() raised \(failure.type): \(failure.message)")
        case .closed, .output, .response, .raised, .rejected:
            if lock.withLock({ killedByWatchdog }) {
                stop(grace: .zero)
                throw .startFailed(module: module, reason: "init() took longer than \(timeout)")
            }
            throw .startFailed(
                module: module, reason: "the worker exited before init() returned (\(exitDescription()))")
        }
    }

    /// Runs one request; blocks until the reply, or until the watchdog killed the worker.
    func score(_ body: [UInt8], headers: [(name: String, value: String)], timeout: Duration) -> Outcome {
        let headerJSON = Array((try? JSONEncoder().encode(headers.map { [$0.name, $0.value] })) ?? Data("[]".utf8))
        return exchange(.score, head: headerJSON, body: body, timeout: timeout)
    }

    /// Runs one Open Inference infer request for model `name` at `version`.
    func infer(_ body: [UInt8], name: String, version: String?, timeout: Duration) -> Outcome {
        var meta: [String: String] = ["model_name": name]
        meta["model_version"] = version
        let head = Array((try? JSONEncoder().encode(meta)) ?? Data("{}".utf8))
        return exchange(.infer, head: head, body: body, timeout: timeout)
    }

    private func exchange(_ request: WorkerChannel.Request, head: [UInt8], body: [UInt8], timeout: Duration) -> Outcome {
        let watchdog = DispatchWorkItem { [self] in killForTimeout() }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout.dispatchInterval, execute: watchdog)
        defer { watchdog.cancel() }
        guard channel.sendFrame(request, head: head, body: body) else { return .died(timedOut: false) }
        switch channel.receive() {
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
    /// while a request is in flight on `queue`, which then ends.
    func terminate() {
        if !lock.withLock({ reaped }) { kill(-pid, SIGTERM) }
    }

    /// Kills the worker's process group (SIGTERM, then SIGKILL after `grace`) and reaps it.
    func stop(grace: Duration = .seconds(2)) {
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
    func exitDescription() -> String {
        stop(grace: .milliseconds(200))
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

extension Duration {
    var dispatchInterval: DispatchTimeInterval {
        let (seconds, attoseconds) = components
        return .nanoseconds(Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000))
    }
}
