import FleetCore

/// The runtime's version, sent in every health report.
public let runtimeVersion = "0.1.0"
