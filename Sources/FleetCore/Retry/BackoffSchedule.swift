/// Capped exponential delays between attempts: `initial`, multiplied by `multiplier`
/// after each failed attempt up to `maximum`, each spread by up to ±`jitter` so that
/// many devices retrying after one outage do not all come back in the same second.
/// The supervisor uses it to restart modules (no jitter: restarts are local), the MQTT
/// client to reconnect to the broker, the reconciler to retry a failed desired state.
public struct BackoffSchedule: Sendable, Equatable {
    public var initial: Duration
    public var maximum: Duration
    /// Growth per failed attempt; 2 doubles.
    public var multiplier: Double
    /// The fraction (0...1) by which `delay(attempt:using:)` may lengthen or shorten a delay.
    public var jitter: Double
    /// An attempt that lasted this long counts as healthy: the next one waits `initial` again.
    public var resetAfter: Duration

    public init(
        initial: Duration = .seconds(1), maximum: Duration = .seconds(60), multiplier: Double = 2, jitter: Double = 0,
        resetAfter: Duration = .seconds(60)
    ) {
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
        self.jitter = min(max(jitter, 0), 1)
        self.resetAfter = resetAfter
    }

    /// Reconnecting to the broker: a device is back within 4.8 s of the broker's return
    /// (3 s + 20 %), while a fleet's reconnects spread over ±20 %.
    public static let brokerReconnect = BackoffSchedule(
        initial: .milliseconds(500), maximum: .seconds(3), multiplier: 2, jitter: 0.2, resetAfter: .seconds(30))

    /// The hub's few connections to the broker (`fleethub serve`): back within 1.2 s of
    /// the broker's return, so that what devices publish as they come back is caught.
    public static let hubReconnect = BackoffSchedule(
        initial: .milliseconds(250), maximum: .seconds(1), multiplier: 2, jitter: 0.2, resetAfter: .seconds(30))

    /// Retrying a desired state that failed (hub unreachable, a bundle whose digest does
    /// not match, pip failing): 5 s doubling to 10 min, ±20 %, so a broken bundle is not
    /// downloaded at full speed forever and a fleet does not retry in step.
    public static let desiredStateRetry = BackoffSchedule(
        initial: .seconds(5), maximum: .seconds(600), multiplier: 2, jitter: 0.2)

    /// The delay before attempt number `attempt` (1 for the first retry), without jitter.
    public func delay(attempt: Int) -> Duration {
        guard attempt > 1 else { return min(initial, maximum) }
        var delay = initial
        for _ in 1..<attempt {
            delay = delay * multiplier
            if delay >= maximum { return maximum }
        }
        return delay
    }

    /// The delay before attempt number `attempt`, spread by up to ±`jitter` with `generator`.
    public func delay(attempt: Int, using generator: inout some RandomNumberGenerator) -> Duration {
        let base = delay(attempt: attempt)
        guard jitter > 0 else { return base }
        return base * Double.random(in: (1 - jitter)...(1 + jitter), using: &generator)
    }

    /// The attempt number after an attempt that lasted `uptime` ended, given the
    /// attempt number of the one that started it.
    public func nextAttempt(after previous: Int, uptime: Duration) -> Int {
        uptime >= resetAfter ? 1 : previous + 1
    }
}
