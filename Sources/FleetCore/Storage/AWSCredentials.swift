import Foundation

/// An access key pair, read from a file in the AWS shared-credentials format so that the secret never
/// appears on a command line, in `ps` or in the device config itself.
public struct AWSCredentials: Equatable, Sendable {
    public var accessKeyId: String
    public var secretAccessKey: String

    public init(accessKeyId: String, secretAccessKey: String) {
        self.accessKeyId = accessKeyId
        self.secretAccessKey = secretAccessKey
    }

    /// Reads `profile` from an INI file such as `~/.aws/credentials`:
    /// ```
    /// [default]
    /// aws_access_key_id = AKID…
    /// aws_secret_access_key = …
    /// ```
    public static func load(fromFile path: String, profile: String = "default") throws -> AWSCredentials {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ObjectStoreError.credentials(path: path, reason: "cannot read the file: \(error.localizedDescription)")
        }
        return try parse(text, path: path, profile: profile)
    }

    /// Parses shared-credentials text; `path` only names the source in errors.
    public static func parse(_ text: String, path: String, profile: String = "default") throws -> AWSCredentials {
        var section: String?
        var values: [String: String] = [:]
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                section = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                continue
            }
            guard section == profile, let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            values[key] = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
        }
        guard let id = values["aws_access_key_id"], !id.isEmpty,
            let secret = values["aws_secret_access_key"], !secret.isEmpty
        else {
            throw ObjectStoreError.credentials(
                path: path, reason: "profile [\(profile)] needs aws_access_key_id and aws_secret_access_key")
        }
        return AWSCredentials(accessKeyId: id, secretAccessKey: secret)
    }
}

extension AWSCredentials {
    /// The key pair the usual AWS way, for a process whose settings name no file:
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, else profile `AWS_PROFILE`
    /// (`default`) of `AWS_SHARED_CREDENTIALS_FILE` (`~/.aws/credentials`).
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> AWSCredentials {
        if let id = environment["AWS_ACCESS_KEY_ID"], !id.isEmpty,
            let secret = environment["AWS_SECRET_ACCESS_KEY"], !secret.isEmpty
        {
            return AWSCredentials(accessKeyId: id, secretAccessKey: secret)
        }
        let home = environment["HOME"] ?? FileManager.default.homeDirectoryForCurrentUser.path
        let file = environment["AWS_SHARED_CREDENTIALS_FILE"] ?? "\(home)/.aws/credentials"
        guard FileManager.default.fileExists(atPath: file) else {
            throw ObjectStoreError.credentials(
                path: file,
                reason: "no such file, and AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set; set them, or name a credentials file")
        }
        return try load(fromFile: file, profile: environment["AWS_PROFILE"] ?? "default")
    }
}
