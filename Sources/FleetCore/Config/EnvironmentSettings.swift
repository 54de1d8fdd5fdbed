/// How long the device gives the commands that build a scoring module's Python
/// environment, as the device config's `environments:` section. A pip install that
/// hangs (an index that never answers) would otherwise hold the desired state forever.
public struct EnvironmentSettings: Codable, Equatable, Sendable {
    /// Longest `python3 -m venv` may take (`defaultVenvTimeoutSeconds` when absent).
    public var venvTimeoutSeconds: Int?
    /// Longest `pip install -r` may take (`defaultPipTimeoutSeconds` when absent).
    public var pipTimeoutSeconds: Int?

    public static let defaultVenvTimeoutSeconds = 300
    public static let defaultPipTimeoutSeconds = 900

    public init(venvTimeoutSeconds: Int? = nil, pipTimeoutSeconds: Int? = nil) {
        self.venvTimeoutSeconds = venvTimeoutSeconds
        self.pipTimeoutSeconds = pipTimeoutSeconds
    }
}
