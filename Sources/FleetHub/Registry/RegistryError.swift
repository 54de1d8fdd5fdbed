/// Why a registry command (models, modules, devices) refused its input.
public enum RegistryError: Error, Equatable, CustomStringConvertible {
    case invalidReference(String)
    case invalidTag(String)
    case unknownModel(String)
    case unknownModule(String)
    case unknownDevice(String)
    case deviceExists(String)
    case missingPath(String)
    case unreadablePath(String, reason: String)
    case noFiles(String)
    case duplicateFilePath(String)
    case blobStoreFailed(String, reason: String)
    case modelInUse(String, deployments: [String])
    case moduleInUse(String, deployments: [String])
    case missingEntry(String, in: String)
    case invalidModule(String)
    case unwritable(String, reason: String)
    case wheelDownloadFailed(String)
    case invalidModel(String, reason: String)
    case unresolvableRequirements(String, pip: String)
    /// A requirement resolves to something a device could not install by version and hash:
    /// `line` is where it is (`requirements.txt:3: ./mypkg`), `reason` why.
    case unpinnableRequirement(line: String, reason: String)
    case pythonUnavailable(String, reason: String)
    case configFileExists(String)
    /// Other `module package` runs of the same name took the next version `attempts` times
    /// while this one was building its bundle.
    case packagedMeanwhile(String, attempts: Int)
    /// A `--baseline` file that cannot be the model's training inputs: which file, and why.
    case invalidBaseline(String, reason: String)

    public var description: String {
        switch self {
        case .invalidReference(let text): "'\(text)' is not a reference of the form name:version (e.g. iris:1)"
        case .invalidTag(let text): "'\(text)' is not a tag: expected key=value (e.g. site=plant-1)"
        case .unknownModel(let reference):
            "no registered model \(reference); `fleethub model list` shows what is registered"
        case .unknownModule(let reference):
            "no packaged module \(reference); `fleethub module list` shows what is packaged"
        case .unknownDevice(let id): "no device '\(id)'; `fleethub device list` shows the registered devices"
        case .deviceExists(let id): "device '\(id)' is already registered; use `fleethub device tag` to change its tags"
        case .missingPath(let path): "\(path) does not exist"
        case .unreadablePath(let path, let reason): "cannot read \(path): \(reason)"
        case .noFiles(let path): "\(path) holds no files to register"
        case .duplicateFilePath(let path):
            "two of the given paths would both be stored as '\(path)'; pass them from different folders"
        case .blobStoreFailed(let path, let reason): "cannot store \(path) in the workspace: \(reason)"
        case .modelInUse(let reference, let deployments):
            "model \(reference) is used by active deployment(s) \(deployments.joined(separator: ", ")); delete those first with `fleethub deployment delete NAME`"
        case .moduleInUse(let reference, let deployments):
            "module \(reference) is used by deployment(s) \(deployments.joined(separator: ", ")); deploy another version or delete those first with `fleethub deployment delete NAME`"
        case .missingEntry(let entry, let folder): "the entry script \(entry) is not in \(folder)"
        case .invalidModule(let why): "cannot package the module: \(why)"
        case .unwritable(let path, let reason): "cannot write \(path): \(reason)"
        case .wheelDownloadFailed(let output): "downloading the requirements as wheels failed: \(output)"
        case .invalidModel(let path, let reason): "the model \(path) cannot be served without a score.py: \(reason)"
        case .unresolvableRequirements(let file, let pip):
            "the requirements in \(file) cannot be resolved, so a device could not build the module's environment: \(pip); fix the versions, or pass --vendor-wheels with the wheels on a --find-links line"
        case .unpinnableRequirement(let line, let reason):
            "the requirement \(line) cannot be pinned to a version and sha256 the device can check: \(reason); "
                + "publish the package to an index (or a --find-links folder) and require it as NAME==VERSION, "
                + "or give a https:// URL with #sha256=…"
        case .pythonUnavailable(let python, let reason):
            "cannot run \(python) to check the module (\(reason)); install python3 with pip, or set FLEETHUB_PYTHON to a Python that has pip"
        case .configFileExists(let path):
            "\(path) already exists (another device's config?); choose another --out, or pass --force to replace it"
        case .packagedMeanwhile(let name, let attempts):
            "other `fleethub module package` runs of \(name) took the next version \(attempts) times while this one built its bundle; nothing was registered: run it again once they are done"
        case .invalidBaseline(let path, let reason):
            "the baseline \(path) cannot be used: \(reason); give the training inputs as CSV (a header naming the features) or .npy (rows × features); nothing was registered"
        }
    }
}
