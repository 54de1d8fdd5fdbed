import FleetSQL

/// One publisher at a time per hub, across every `fleethub` process, task and hub
/// instance (each `deploy`, `publish`, `serve`'s rollouts). A publisher reads the staged
/// states and sends them in its turn, so a publisher that read a device's revision 5 can
/// never deliver it after another one delivered revision 6: the broker's retained state
/// only grows. The turn is the database's (`SQLDatabase.takeTurn`): a `flock` beside the
/// SQLite file, a PostgreSQL session advisory lock; both end when their holder dies.
struct PublishingTurn {
    private let turn: any SQLTurn

    /// Waits for the turn.
    static func take(in workspace: Workspace) async throws -> PublishingTurn {
        PublishingTurn(turn: try await workspace.database.takeTurn("publish"))
    }

    /// Ends the turn; the next waiting publisher takes it.
    func end() {
        turn.end()
    }
}
