import NIOCore
import NIOPosix

/// The event loop that the local API serves on and every scoring worker's socket is read
/// and written on. A scoring request is then read, handed to its worker, answered and
/// written by one thread: each hand-off between threads wakes an idle one, and on a
/// quiet device that costs more than the transport itself. It is one loop of NIO's shared
/// group, which the local API served on before.
enum InferenceLoop {
    static let eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.next()

    /// Runs the tasks that prefer it (the local API's connections) on `eventLoop`.
    static let executor = EventLoopTaskExecutor(eventLoop: eventLoop)
}
