/// The runtime's version, sent in every health report and connection message.
public let runtimeVersion = "0.1.0"
