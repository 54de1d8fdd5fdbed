import NIOCore

/// How many threads the daemon gives SwiftNIO: one event loop and one thread for
/// blocking calls (TLS contexts of the HTTP client). A device runs one daemon whose
/// network traffic (local API, bundle downloads, uploads) is light; NIO's default, one
/// of each per core, would only cost memory and threads.
public enum NetworkThreads {
    /// Sets the counts for the process. Call it once, first thing in `main`, before
    /// anything uses NIO's shared event loop group or thread pool.
    public static func limitToOne() {
        NIOSingletons.groupLoopCountSuggestion = 1
        NIOSingletons.blockingPoolThreadCountSuggestion = 1
    }
}
