import NIOCore

/// Runs a task's async work on a NIO event loop's thread, so a task that prefers it and
/// awaits what the loop completes (a request's body, a worker's reply) resumes on the
/// thread that completed it instead of waking another. The work must not block: it holds
/// up the loop's I/O.
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
