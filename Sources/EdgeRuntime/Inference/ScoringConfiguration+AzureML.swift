import Foundation

/// A registered model, by the name and version module.json records for it.
public struct ScoringModel: Sendable, Equatable {
    public var name: String
    public var version: Int

    public init(name: String, version: Int) {
        self.name = name
        self.version = version
    }
}

/// The folders Azure ML's scoring containers give a `score.py`, so both ways of finding the
/// model work: `os.path.join(os.getenv("AZUREML_MODEL_DIR"), "model.pkl")` and the v1 SDK's
/// `Model.get_model_path(name)`, which looks under `$AML_APP_ROOT/azureml-models/<name>/<version>/`.
extension ScoringConfiguration {
    /// `AML_APP_ROOT`: the module folder, where `azureml-models/` is.
    public var appRoot: URL { moduleDirectory }

    /// `AZUREML_MODEL_DIR`, as Azure ML sets it: `azureml-models/<name>/<version>` for one model,
    /// `azureml-models` for several, and the unpacked `model/` folder for a bundle without one.
    public var azureMLModelDirectory: URL {
        let root = appRoot.appending(path: "azureml-models")
        switch models.count {
        case 0: return modelDirectory
        case 1: return root.appending(path: models[0].name).appending(path: String(models[0].version))
        default: return root
        }
    }

    /// Links each model's `azureml-models/<name>/<version>` to the unpacked model folder (a
    /// bundle holds its model's files once, under `model/`); a link already there is kept.
    func layOutAzureMLModels() throws(ScoringError) {
        let manager = FileManager.default
        for model in models {
            let version = appRoot.appending(path: "azureml-models").appending(path: model.name)
                .appending(path: String(model.version))
            guard (try? manager.destinationOfSymbolicLink(atPath: version.path)) == nil,
                !manager.fileExists(atPath: version.path)
            else { continue }
            do {
                try manager.createDirectory(at: version.deletingLastPathComponent(), withIntermediateDirectories: true)
                try manager.createSymbolicLink(atPath: version.path, withDestinationPath: modelDirectory.path)
            } catch {
                throw .startFailed(
                    module: module,
                    reason: "cannot link \(version.path) to the model folder: \(error); check that the module folder is writable")
            }
        }
    }
}
