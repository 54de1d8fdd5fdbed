/// The MQTT topic names of the wire contract (namespace `fleet/v1`), kept in one
/// place so the hub, the runtime and the tests can never disagree on a spelling.
public enum Topics {
    /// Every topic of this contract starts with this namespace.
    public static let namespace = "fleet/v1"

    /// Hub → device, retained: the signed desired state of one device.
    public static func desired(_ deviceId: String) -> String { "\(namespace)/devices/\(deviceId)/desired" }

    /// Device → hub, retained: the device's latest health report.
    public static func reported(_ deviceId: String) -> String { "\(namespace)/devices/\(deviceId)/reported" }

    /// Device → hub, retained: online on connect, offline as the device's last will.
    public static func connection(_ deviceId: String) -> String { "\(namespace)/devices/\(deviceId)/connection" }

    /// Hub → device, not retained: requests for a module's log (`ModuleLogRequest`).
    public static func logRequest(_ deviceId: String) -> String { "\(namespace)/devices/\(deviceId)/logs/request" }

    /// Device → hub, not retained: the answer to the log request `requestId` (`ModuleLogReply`).
    public static func logReply(_ deviceId: String, _ requestId: String) -> String {
        "\(namespace)/devices/\(deviceId)/logs/reply/\(requestId)"
    }

    /// Hub → itself, not retained: the end of the retained messages it reads as it
    /// (re)connects (`MQTTClient.retainedMessages`); `id` is unique per read.
    public static func retainedEndMarker(_ id: String) -> String { "\(namespace)/hub/retained-end/\(id)" }

    /// Subscription filter matching every device's health reports.
    public static let allReported = "\(namespace)/devices/+/reported"

    /// Subscription filter matching every device's connection state.
    public static let allConnection = "\(namespace)/devices/+/connection"

    /// The device id inside a `fleet/v1/devices/{id}/…` topic, or nil for any other topic.
    public static func deviceId(inTopic topic: String) -> String? {
        let parts = topic.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0] == "fleet", parts[1] == "v1", parts[2] == "devices", !parts[3].isEmpty
        else { return nil }
        return String(parts[3])
    }
}
