import EdgeRuntime
import FleetCore
import FleetTesting
import Foundation
import Testing

@Suite struct StateStoreTests {
    /// `edge-runtime status` may open the state database while the daemon creates it.
    @Test func connectionsOpeningANewDatabaseAtOnceAllSucceed() async throws {
        for _ in 0..<20 {
            let directory = try TemporaryDirectory(prefix: "state-race")
            let url = directory.url.appendingPathComponent("state.sqlite")
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<4 { group.addTask { _ = try StateStore(url: url) } }
                try await group.waitForAll()
            }
        }
    }

    @Test func acceptsOnlyHigherRevisionsAndKeepsThemAcrossReopen() throws {
        let directory = try TemporaryDirectory(prefix: "state-store")
        let url = directory.url.appendingPathComponent("state.sqlite")
        let store = try StateStore(url: url)
        #expect(try store.acceptedRevision() == 0)
        #expect(try store.acceptedDesiredState() == nil)
        let five = DesiredState(deviceId: "gw-001", revision: 5, issuedAt: Date(timeIntervalSince1970: 0), deployments: [], modules: [])
        #expect(try store.accept(five))
        var older = five
        older.revision = 4
        #expect(try !store.accept(older))
        #expect(try !store.accept(five))
        try store.setDesiredStatus(DesiredStateStatus(revision: 5, status: .applied))

        let reopened = try StateStore(url: url)
        #expect(try reopened.acceptedDesiredState() == five)
        let status = try reopened.status()
        #expect(status.acceptedRevision == 5)
        #expect(status.appliedRevision == 5)
        #expect(status.desired == DesiredStateStatus(revision: 5, status: .applied))
    }

    @Test func statusOfAnOlderRevisionDoesNotOverwriteTheNewerOne() throws {
        let directory = try TemporaryDirectory(prefix: "state-store")
        let store = try StateStore(url: directory.url.appendingPathComponent("state.sqlite"))
        _ = try store.accept(DesiredState(deviceId: "d", revision: 2, issuedAt: Date(), deployments: [], modules: []))
        try store.setDesiredStatus(DesiredStateStatus(revision: 1, status: .failed, error: "old"))
        #expect(try store.status().desired == DesiredStateStatus(revision: 2, status: .applying))
    }
}
