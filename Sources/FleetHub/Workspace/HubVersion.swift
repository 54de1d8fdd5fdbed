/// The hub's version, reported by `fleethub --version`.
public let fleetHubVersion = "0.1.0"
