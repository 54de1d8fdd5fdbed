import Foundation

/// README's "The workflow by hand", read from README.md itself, for the tests that check
/// its commands and run it, so that the README and what works cannot drift apart.
public enum ReadmeWorkflow {
    /// The repository's root folder.
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The section's shell block, as a reader copies it.
    public static func block() throws -> String {
        let path = root.appendingPathComponent("README.md").path
        let readme = try String(contentsOfFile: path, encoding: .utf8)
        guard let section = readme.components(separatedBy: "## The workflow by hand").dropFirst().first,
            let block = section.components(separatedBy: "```sh\n").dropFirst().first?.components(separatedBy: "```").first
        else { throw FixtureError.didNotStart("the README's workflow", log: "no ```sh block under \"## The workflow by hand\" in \(path)") }
        return block
    }
}
