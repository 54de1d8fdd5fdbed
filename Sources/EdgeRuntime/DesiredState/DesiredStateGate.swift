import FleetCore
import Foundation

/// Decides whether a message on the desired topic may change this device: it must be
/// signed by the hub's key, addressed to this device, newer than anything accepted
/// before, and name its modules in a way the runtime can use as file names.
public struct DesiredStateGate: Sendable {
    public let deviceId: String
    public let hubKey: HubPublicKey

    public init(deviceId: String, hubKey: HubPublicKey) {
        self.deviceId = deviceId
        self.hubKey = hubKey
    }

    /// The desired state in `message`, or why it is refused.
    public func check(_ message: Data, acceptedRevision: Int) -> Result<DesiredState, DesiredStateRefusal> {
        let state: DesiredState
        do {
            state = try hubKey.open(message, for: deviceId)
        } catch let error as SigningError {
            return .failure(.unverified(error))
        } catch {
            return .failure(.unverified(.malformedEnvelope("\(error)")))
        }
        guard state.revision > acceptedRevision else {
            return .failure(.notNewer(revision: state.revision, accepted: acceptedRevision))
        }
        var names = Set<String>()
        for module in state.modules {
            guard FleetName.isValid(module.name) else { return .failure(.badModuleName(module.name)) }
            guard names.insert(module.name).inserted else { return .failure(.duplicateModule(module.name)) }
        }
        return .success(state)
    }
}

/// Why a desired-state message was refused; it changes nothing on the device.
public enum DesiredStateRefusal: Error, Equatable, CustomStringConvertible {
    case unverified(SigningError)
    case notNewer(revision: Int, accepted: Int)
    case badModuleName(String)
    case duplicateModule(String)

    public var description: String {
        switch self {
        case .unverified(let error): "\(error)"
        case .notNewer(let revision, let accepted):
            "desired state revision \(revision) is not newer than the accepted revision \(accepted) (replayed or out of date)"
        case .badModuleName(let name):
            "module name '\(name)' is not valid: use \(FleetName.rule)"
        case .duplicateModule(let name): "module '\(name)' appears twice in the desired state"
        }
    }
}
