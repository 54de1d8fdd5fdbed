/// Why a workspace could not be created, opened or changed.
public enum WorkspaceError: Error, Equatable, CustomStringConvertible {
    case alreadyExists(String)
    case missing(String)
    case unreadable(String, reason: String)
    case invalidSetting(String, value: String, expected: String)
    case unknownSetting(String)
    case plainHTTPRefused(String)
    /// `init --database` named a database that already holds a hub.
    case databaseHoldsAHub(String)
    /// The blob bucket (`blobs`) cannot be read with its settings.
    case unusableBlobBucket(String, reason: String)

    public var description: String {
        switch self {
        case .alreadyExists(let path):
            "a workspace already exists at \(path); use it, or pass --workspace with another folder"
        case .missing(let path):
            "no workspace at \(path); create one with `fleethub init --workspace \(path)` or set FLEETHUB_HOME"
        case .unreadable(let path, let reason): "cannot read \(path): \(reason)"
        case .invalidSetting(let key, let value, let expected): "'\(value)' is not a valid \(key): expected \(expected)"
        case .plainHTTPRefused(let url):
            "refusing the http:// public URL \(url): device tokens and bundles would cross the network in clear text; use https:// (`fleethub config set public-url https://…`; the hub's CA issues the certificate), or allow it for a test setup with `fleethub init --insecure-http` or `fleethub config set insecure-http true`"
        case .databaseHoldsAHub(let location):
            "the database \(location) already holds a hub; to run another instance of that hub, copy its workspace folder (keys, CA and config.json) to this machine instead of running `fleethub init`"
        case .unusableBlobBucket(let url, let reason):
            "cannot keep the blobs in \(url): \(reason); fix it with `fleethub config set blobs-endpoint|blobs-region|blobs-credentials VALUE` (or --blobs-… with `fleethub init`); nothing was changed"
        case .unknownSetting(let key):
            "unknown setting '\(key)'; settings are \(HubConfig.Key.allCases.map(\.rawValue).joined(separator: ", "))"
        }
    }
}
