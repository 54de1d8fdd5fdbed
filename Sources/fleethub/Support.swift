import ArgumentParser
import FleetCore
import FleetHub
import Foundation

/// `--workspace DIR`, taken by every command.
struct WorkspaceOptions: ParsableArguments {
    @Option(name: .long, help: "The hub workspace folder (default: $FLEETHUB_HOME, else ./.fleethub).")
    var workspace: String?

    var root: URL { workspace.map { URL(fileURLWithPath: $0) } ?? Workspace.defaultRoot() }

    func open() throws -> Workspace { try Workspace.open(at: root) }
}

/// `--tag k=v` and `--target EXPR`, taken by every list of tagged things (devices).
struct TagFilterOptions: ParsableArguments {
    @Option(help: "Only those with this tag key=value; repeatable (all must match).") var tag: [String] = []
    @Option(help: "Only those a deployment target expression matches, e.g. \"site in (plant-1, plant-2) AND role=gateway\".")
    var target: String?

    /// Whether an item with `tags` passes both filters; a bad tag or expression is an error.
    func matcher() throws -> ([String: String]) -> Bool {
        let wanted = try TagParser.parse(tag)
        let expression = try target.map(TargetExpression.init(parsing:))
        return { tags in
            wanted.allSatisfy { tags[$0.key] == $0.value } && (expression?.matches(tags) ?? true)
        }
    }
}

/// `--json`, taken by every list and show command.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print one JSON document instead of text.")
    var json = false
}

enum Output {
    static func json(_ value: some Encodable) throws {
        print(String(decoding: try FleetJSON.prettyEncoder().encode(value), as: UTF8.self))
    }

    static func table(_ header: [String], _ rows: [[String]]) {
        let widths = header.indices.map { column in
            ([header[column]] + rows.map { $0[column] }).map(\.count).max() ?? 0
        }
        for row in [header] + rows {
            let cells = row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }
            print(cells.joined(separator: "  "))
        }
    }

    static func tags(_ tags: [String: String]) -> String {
        tags.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }

    static func date(_ date: Date) -> String {
        date.formatted(.iso8601)
    }

    static func warn(_ message: String) {
        FileHandle.standardError.write(Data("warning: \(message)\n".utf8))
    }
}

/// Publishes what a change staged, and says what happened.
enum Publishing {
    static func publish(_ change: RolloutChange, workspace: Workspace) async throws {
        for warning in change.warnings { Output.warn(warning) }
        let published = try await DesiredStatePublisher(workspace: workspace).publishPending()
        if !published.isEmpty {
            print("published desired state to \(published.count) device(s): \(published.joined(separator: ", "))")
        } else if change.changedDevices.isEmpty {
            print("no device's desired state changed")
        }
    }
}
