import FleetCore
import Testing

@Suite struct BackoffScheduleTests {
    @Test func delaysDoubleUpToTheCap() {
        let schedule = BackoffSchedule(initial: .seconds(1), maximum: .seconds(10), resetAfter: .seconds(60))
        #expect((1...6).map { schedule.delay(attempt: $0) } == [
            .seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(10), .seconds(10),
        ])
        #expect(schedule.delay(attempt: 1000) == .seconds(10))
    }

    @Test func multiplierSetsTheGrowth() {
        let schedule = BackoffSchedule(initial: .seconds(10), maximum: .seconds(30), multiplier: 1.5)
        #expect((1...5).map { schedule.delay(attempt: $0) } == [
            .seconds(10), .seconds(15), .milliseconds(22_500), .seconds(30), .seconds(30),
        ])
    }

    @Test func healthyRunResetsTheAttempts() {
        let schedule = BackoffSchedule(initial: .seconds(1), maximum: .seconds(10), resetAfter: .seconds(60))
        #expect(schedule.nextAttempt(after: 4, uptime: .seconds(2)) == 5)
        #expect(schedule.nextAttempt(after: 4, uptime: .seconds(60)) == 1)
        #expect(schedule.nextAttempt(after: 0, uptime: .zero) == 1)
    }

    @Test func jitterStaysWithinItsFraction() {
        let schedule = BackoffSchedule(initial: .seconds(1), maximum: .seconds(4), jitter: 0.2)
        var generator = SystemRandomNumberGenerator()
        let delays = (0..<200).map { _ in schedule.delay(attempt: 10, using: &generator) }
        #expect(delays.allSatisfy { $0 >= .milliseconds(3_200) && $0 <= .milliseconds(4_800) })
        #expect(Set(delays).count > 1)
    }

    @Test func brokerReconnectIsBackWithinFiveSeconds() {
        let schedule = BackoffSchedule.brokerReconnect
        let worst = schedule.delay(attempt: 1000) * (1 + schedule.jitter)
        #expect(worst < .seconds(5))
    }
}
