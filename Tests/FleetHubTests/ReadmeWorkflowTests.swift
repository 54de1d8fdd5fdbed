import FleetHub
import FleetTesting
import Foundation
import Testing

/// README's "The workflow by hand", read from the README itself so the two cannot
/// drift apart: every command and option exists in the built executables, every
/// repository file it names exists, every bundle a deployed manifest names was
/// packaged by an earlier line, and `broker-config` gives the broker's user.
struct ReadmeWorkflowTests {
    static let root = ReadmeWorkflow.root

    /// The block's command lines, continuations joined, comments and blank lines dropped.
    static func workflow() throws -> [String] {
        let block = try ReadmeWorkflow.block()
        return block.replacingOccurrences(of: "\\\n", with: " ").split(separator: "\n")
            .map { line in
                let command = line.range(of: "  #").map { line[..<$0.lowerBound] } ?? line[...]
                return command.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: " &", with: "")
            }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
    }

    /// Splits a shell line into words, honouring double quotes.
    static func words(_ line: String) -> [String] {
        var words: [String] = []
        var current = ""
        var quoted = false
        for character in line {
            if character == "\"" {
                quoted.toggle()
            } else if character == " ", !quoted {
                if !current.isEmpty { words.append(current) }
                current = ""
            } else {
                current.append(character)
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    @Test func everyCommandAndOptionOfTheWorkflowExists() throws {
        let lines = try Self.workflow()
        #expect(lines.count > 15, "the workflow block was not found: \(lines)")
        for line in lines {
            let words = Self.words(line)
            guard let program = words.first, program == "fleethub" || program == "edge-runtime" else { continue }
            let subcommand = Array(words.dropFirst().prefix { !$0.hasPrefix("-") && !$0.contains("/") && !$0.contains(".") })
            let help = try Fixtures.run(Fixtures.builtExecutable(program), subcommand + ["--help"])
            for option in words.filter({ $0.hasPrefix("--") }) {
                #expect(help.contains(option), "`\(line)`: \(program) \(subcommand.joined(separator: " ")) has no \(option)")
            }
        }
    }

    /// Every command of both executables, found through the SUBCOMMANDS of each help.
    @Test func everyHelpHasAnExamplesSection() throws {
        for program in ["fleethub", "edge-runtime"] {
            var pending: [[String]] = [[]]
            var seen = 0
            while let path = pending.popLast() {
                let help = try Fixtures.run(Fixtures.builtExecutable(program), path + ["--help"])
                seen += 1
                #expect(help.contains("\nEXAMPLES:\n  \(program)"), "`\(program) \(path.joined(separator: " ")) --help` has no EXAMPLES")
                // The SUBCOMMANDS section ends at its first blank line.
                guard let list = help.components(separatedBy: "SUBCOMMANDS:\n").dropFirst().first?
                    .components(separatedBy: "\n\n").first
                else { continue }
                for line in list.split(separator: "\n") where line.hasPrefix("  ") && !line.hasPrefix("   ") {
                    guard let name = line.split(separator: " ").first, name.allSatisfy({ $0.isLowercase || $0 == "-" }) else { continue }
                    pending.append(path + [String(name)])
                }
                #expect(seen < 200, "walking the help found more commands than there are")
                if seen >= 200 { break }
            }
            #expect(seen > (program == "fleethub" ? 40 : 4), "only \(seen) \(program) commands found")
        }
    }

    @Test func everyFileExistsAndEveryDeployedBundleWasPackagedBefore() throws {
        var packaged: [String: Int] = [:]
        let lines = try Self.workflow()
        for line in lines {
            let words = Self.words(line)
            for word in words where word.hasPrefix("examples/") || word.hasPrefix("manifests/") || word.hasPrefix("@examples/") {
                let path = word.hasPrefix("@") ? String(word.dropFirst()) : word
                #expect(FileManager.default.fileExists(atPath: Self.root.appendingPathComponent(path).path), "`\(line)`: no \(path) in the repository")
            }
            if words.starts(with: ["fleethub", "module", "package"]), let index = words.firstIndex(of: "--name") {
                packaged[words[index + 1], default: 0] += 1
            }
            if words.starts(with: ["fleethub", "deploy"]), let file = words.last {
                let manifest = try ManifestParser.parse(fileAt: Self.root.appendingPathComponent(file).path).manifest
                for module in manifest.modules {
                    let reference = try VersionedName(parsingExact: module.bundle)
                    #expect((reference.version ?? 0) <= packaged[reference.name, default: 0],
                            "`\(line)` deploys \(module.bundle), which no earlier line of the workflow packaged")
                }
            }
        }
        let brokerConfig = try #require(lines.first { $0.hasPrefix("fleethub broker-config") })
        #expect(brokerConfig.contains("--run-as"), "as root, broker-config needs --run-as: \(brokerConfig)")
    }
}
