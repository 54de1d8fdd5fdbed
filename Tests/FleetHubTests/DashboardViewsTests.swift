import FleetCore
@testable import FleetHub
import Foundation
import Testing

/// The dashboard's overview rules at fleet scale, without a server: problem devices
/// first, 100 a page, search by id, tag and status.
struct DashboardViewsTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func summary(_ index: Int, connectivity: Connectivity = .online, status: DesiredStateStatus.Status = .applied, running: Int = 1) -> DeviceHealthSummary {
        DeviceHealthSummary(
            id: String(format: "dev-%05d", index), tags: ["site": index % 2 == 0 ? "even" : "odd"], connectivity: connectivity,
            reportedRevision: 1, revisionStatus: status, desiredRevision: 1, modulesRunning: running, modulesTotal: 1, restarts: 0,
            lastSeen: now, offlineSince: nil, running: [])
    }

    /// 250 devices: dev-00200 failed its revision, dev-00100 runs no module, dev-00050 is offline.
    var fleet: [DeviceHealthSummary] {
        (0..<250).map { index in
            switch index {
            case 200: summary(index, status: .failed)
            case 100: summary(index, running: 0)
            case 50: summary(index, connectivity: .offline)
            default: summary(index)
            }
        }
    }

    var overview: FleetOverview {
        FleetOverview(
            devices: 250, online: 249, offline: 1, unknown: 0,
            alerts: (0..<30).map { HealthAlert(kind: .deviceOffline, subject: "dev-\($0)", message: "device dev-\($0) offline") },
            rollouts: [], stagedRollouts: [])
    }

    @Test func problemDevicesComeFirstAndTheRestIsPagedByHundred() {
        let first = DashboardViews.overview(overview, devices: fleet, query: .init(), now: now)
        #expect(first.devices.prefix(4).map(\.id) == ["dev-00200", "dev-00100", "dev-00050", "dev-00000"])
        #expect(first.devices.prefix(3).map(\.problem) == ["revision failed", "module not running", "offline"])
        #expect(first.devices.count == 100)
        #expect(first.counts.problems == 3)
        #expect(first.pager.shown == "1–100 of 250")
        #expect(first.pager.previous == nil)
        #expect(first.pager.next == "?page=2")
        #expect(first.alerts.count == DashboardViews.alertsShown)
        #expect(first.moreAlerts == 10)

        let last = DashboardViews.overview(overview, devices: fleet, query: .init(page: 3), now: now)
        #expect(last.devices.count == 50)
        #expect(last.devices.last?.id == "dev-00249")
        #expect(last.pager.shown == "201–250 of 250")
        #expect(last.pager.next == nil)
        // Past the last page: the last page.
        #expect(DashboardViews.overview(overview, devices: fleet, query: .init(page: 9), now: now).devices.map(\.id) == last.devices.map(\.id))
    }

    @Test func searchByIdTagAndStatusKeepsTheSearchInThePageLinks() {
        let byId = DashboardViews.overview(overview, devices: fleet, query: .init(text: "0012"), now: now)
        #expect(byId.devices.map(\.id) == ([12] + Array(120..<130)).map { String(format: "dev-%05d", $0) })
        let odd = DashboardViews.overview(overview, devices: fleet, query: .init(tag: "site=odd"), now: now)
        #expect(odd.matching == 125)
        #expect(odd.devices.allSatisfy { $0.tags == ["site=odd"] })
        #expect(odd.pager.next == "?tag=site%3Dodd&page=2")
        let problems = DashboardViews.overview(overview, devices: fleet, query: .init(status: "problem"), now: now)
        #expect(problems.devices.map(\.id) == ["dev-00200", "dev-00100", "dev-00050"])
        let offline = DashboardViews.overview(overview, devices: fleet, query: .init(status: "offline"), now: now)
        #expect(offline.devices.map(\.id) == ["dev-00050"])
    }

    @Test func theQueryStringIsDecoded() {
        let parameters: [(key: Substring, value: Substring)] = [("q", " dev-001 "), ("tag", "site%3Dodd"), ("status", "problem"), ("page", "4")]
        let query = DashboardViews.DeviceQuery(parameters)
        #expect(query.text == "dev-001")
        #expect(query.tag == "site=odd")
        #expect(query.status == "problem")
        #expect(query.page == 4)
        let negative: [(key: Substring, value: Substring)] = [("page", "-3")]
        #expect(DashboardViews.DeviceQuery(negative).page == 1)
    }

    @Test func lastSeenIsAClockTimeSoAPartOnlyChangesWithTheData() {
        #expect(DashboardViews.clock(now, now: now) == "08:00:00 UTC")
        #expect(DashboardViews.clock(now.addingTimeInterval(-86_400), now: now) == "2027-01-14 08:00 UTC")
    }

    /// The device page's input-drift table: every feature's PSI, the ones above the alert
    /// threshold marked; no table without scores.
    @Test func theDevicePageListsEachFeaturesPSIAndMarksTheDriftedOnes() throws {
        let bundle = ContentDigest(of: Data("bundle".utf8))
        let scores = [0.03, 0.41].enumerated().map { index, psi in
            FeatureDrift(
                deviceId: "dev-00001", module: "iris", feature: ["sepal_length", "petal_length"][index], bundle: bundle, psi: psi,
                count: 2000, windowEnd: now)
        }
        let detail = DeviceHealthDetail(summary: summary(1), report: nil, history: [], drift: scores)
        let page = DashboardViews.device(detail, now: now, driftAlertPSI: 0.2)
        #expect(page.hasDrift && page.drift.map(\.psi) == ["0.0300", "0.4100"] && page.drift.map(\.drifted) == [false, true])
        let quiet = DashboardViews.device(DeviceHealthDetail(summary: summary(1), report: nil, history: []), now: now)
        #expect(!quiet.hasDrift && quiet.drift.isEmpty)
        #expect(DashboardTemplates.device.contains(#"{{#hasDrift}}"#) && DashboardTemplates.device.contains(#"{{#drifted}} class="offline"{{/drifted}}"#))
    }
}
