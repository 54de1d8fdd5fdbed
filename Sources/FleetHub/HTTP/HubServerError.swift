import FleetCore

/// Why `fleethub serve` cannot listen.
public enum HubServerError: Error, Equatable, CustomStringConvertible {
    case addressInUse(ListenAddress)
    case cannotListen(ListenAddress, reason: String)

    public var description: String {
        switch self {
        case .addressInUse(let address):
            "cannot listen on \(address): port \(address.port) is already in use (another `fleethub serve`?); stop that program or choose another port with --http HOST:PORT"
        case .cannotListen(let address, let reason):
            "cannot listen on \(address): \(reason); check the host is an address of this machine, and that ports below 1024 need root"
        }
    }
}
