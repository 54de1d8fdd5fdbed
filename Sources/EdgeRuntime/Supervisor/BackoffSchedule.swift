/// Capped exponential restart delays: `initial`, doubled after each quick exit up to
/// `maximum`, and forgotten once a module has stayed up for `resetAfter`.
public struct BackoffSchedule: Sendable, Equatable {
    public var initial: Duration
    public var maximum: Duration
    /// A module that ran this long counts as healthy: its next restart waits `initial` again.
    public var resetAfter: Duration

    public init(initial: Duration = .seconds(1), maximum: Duration = .seconds(60), resetAfter: Duration = .seconds(60)) {
        self.initial = initial
        self.maximum = maximum
        self.resetAfter = resetAfter
    }

    /// The delay before restart number `attempt` (1 for the first restart after a quick exit).
    public func delay(attempt: Int) -> Duration {
        guard attempt > 1 else { return initial }
        var delay = initial
        for _ in 1..<attempt {
            delay = delay * 2
            if delay >= maximum { return maximum }
        }
        return delay
    }

    /// The attempt number after a process that ran for `uptime` exited, given the
    /// attempt number of the restart that started it.
    public func nextAttempt(after previous: Int, uptime: Duration) -> Int {
        uptime >= resetAfter ? 1 : previous + 1
    }
}
