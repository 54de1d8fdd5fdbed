import FleetCore
import Foundation

/// Answers the hub's `ModuleLogRequest`s from the modules' logs on this device, so
/// `fleethub device logs` shows what `edge-runtime logs` shows on the device.
public struct ModuleLogResponder: Sendable {
    let dataDirectory: DataDirectory
    /// The modules the device runs now, for the error that names them.
    let modules: @Sendable () -> [String]

    public init(dataDirectory: DataDirectory, modules: @escaping @Sendable () -> [String]) {
        self.dataDirectory = dataDirectory
        self.modules = modules
    }

    /// The reply to `payload`, or nil for a request nobody waits for any more (expired)
    /// or one whose id cannot name a reply topic.
    func reply(to payload: Data, now: Date = Date()) -> (requestId: String, reply: ModuleLogReply)? {
        guard let request = try? FleetJSON.decode(ModuleLogRequest.self, from: payload),
            ModuleLogRequest.isValidId(request.id), request.expiresAt > now
        else { return nil }
        return (request.id, reply(to: request))
    }

    private func reply(to request: ModuleLogRequest) -> ModuleLogReply {
        func refusal(_ error: String) -> ModuleLogReply {
            ModuleLogReply(id: request.id, module: request.module, lines: [], error: error)
        }
        guard FleetName.isValid(request.module) else {
            return refusal("\"\(request.module)\" is not a module name (\(FleetName.rule))")
        }
        guard (1...ModuleLogRequest.maximumLines).contains(request.lines) else {
            return refusal("cannot send \(request.lines) lines: ask for 1 to \(ModuleLogRequest.maximumLines)")
        }
        let lines: [String]
        do {
            lines = try ModuleLogReader(dataDirectory: dataDirectory, module: request.module).tail(request.lines)
        } catch LogReaderError.noLog {
            let running = modules().sorted()
            return refusal(
                "module \(request.module) has no log on this device; it runs "
                    + (running.isEmpty ? "no modules" : running.joined(separator: ", ")))
        } catch {
            return refusal("cannot read the log of \(request.module): \(error)")
        }
        var kept: [String] = []
        var bytes = 0
        for line in lines.reversed() {
            bytes += line.utf8.count + 1
            if bytes > ModuleLogReply.maximumBytes { break }
            kept.append(line)
        }
        return ModuleLogReply(
            id: request.id, module: request.module, lines: kept.reversed(), truncated: kept.count < lines.count)
    }
}
