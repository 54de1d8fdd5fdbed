import FleetCore
import Foundation

/// What the supervisor needs to run a module's shadow version, or why it cannot: the
/// reconciler builds one from `ModuleSpec.shadow` and the prepared shadow bundle. A
/// shadow that cannot start is reported in the module's health; it never stops the
/// live version from starting.
public enum ShadowLaunch: Sendable, Equatable {
    case ready(ShadowProgram)
    /// The shadow's bundle could not be downloaded, verified, unpacked or given its
    /// environment, or is not a scoring module; `reason` says which.
    case unavailable(digest: ContentDigest, reason: String)
}

/// A prepared shadow bundle: its scoring script, venv and workers, and the share of
/// live requests it gets.
public struct ShadowProgram: Sendable, Equatable {
    public var digest: ContentDigest
    /// The unpacked shadow bundle, the workers' working directory.
    public var folder: URL
    public var scoring: ScoringProgram
    public var environment: [String: String]
    public var sampleRate: Double

    public init(digest: ContentDigest, folder: URL, scoring: ScoringProgram, environment: [String: String], sampleRate: Double) {
        self.digest = digest
        self.folder = folder
        self.scoring = scoring
        self.environment = environment
        self.sampleRate = sampleRate
    }
}

/// Why a module's shadow cannot start; the live version keeps serving either way.
public enum ShadowError: Error, Equatable, CustomStringConvertible {
    case notScoring(module: String)
    case unusable(module: String, digest: ContentDigest, reason: String)

    public var description: String {
        switch self {
        case .notScoring(let module):
            "module '\(module)' is a process module; only python-scoring modules can have a shadow: "
                + "remove its shadow from the manifest"
        case .unusable(let module, let digest, let reason):
            "the shadow \(digest) of module '\(module)' cannot start: \(reason); the live version keeps serving"
        }
    }
}
