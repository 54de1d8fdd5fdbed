import FleetCore
import FleetHub
import FleetTesting
import Foundation
import Testing

/// `fleethub model register --baseline FILE`: the training inputs' summaries and bins,
/// read from CSV or numpy's own `.npy`, and refused with the file and the reason when
/// they cannot be (nothing is registered then).
struct BaselineTests {
    let hub: HubFixture

    init() throws {
        hub = try HubFixture()
    }

    static let python = ProcessInfo.processInfo.environment["FLEET_PYTHON"] ?? Fixtures.which("python3") ?? "python3"
    static let hasNumpy: Bool = { Fixtures.isCI || (try? Fixtures.run(python, ["-c", "import numpy"])) != nil }()

    @Test func aCSVWithAHeaderNamesTheFeaturesAndAStringColumnIsCategorical() throws {
        let model = try hub.write("model.bin", "weights")
        let csv = try hub.write("train.csv", "length,\"colour\"\n1,red\n2,blue\n3,red\n4,red\n")
        let registered = try hub.models.register(name: "flowers", paths: [model], baseline: csv)
        let baseline = try #require(registered.baseline)
        #expect(baseline.rows == 4 && baseline.features.map(\.name) == ["length", "colour"])
        let length = baseline.features[0]
        let edges = try #require(length.bins?.edges)
        #expect(edges.count == 11 && edges.enumerated().allSatisfy { abs($0.element - (1 + 0.3 * Double($0.offset))) < 1e-12 }, "\(edges)")
        #expect(length.summary.histogram?.reduce(0, +) == 4 && length.summary.histogram?.first == 0 && length.summary.histogram?.last == 0)
        #expect(length.summary.mean == 2.5 && length.summary.min == 1 && length.summary.max == 4)
        #expect(baseline.features[1].bins == nil && baseline.features[1].summary.categories == ["red": 3, "blue": 1])
        #expect(try hub.models.show(VersionedName(parsing: "flowers:1")).baseline == baseline)
    }

    @Test(.enabled(if: Self.hasNumpy, "needs numpy in the test Python (scripts/setup)"))
    func anNpyFileGivesTheSameBinsAsNumpysQuantiles() throws {
        let model = try hub.write("model.bin", "weights")
        let path = hub.directory.file("train.npy")
        let output = try Fixtures.run(Self.python, [
            "-c",
            """
            import json, sys, numpy as np
            rows = np.random.default_rng(3).normal(size=(500, 3)).astype(np.float32)
            np.save(sys.argv[1], rows)
            print(json.dumps([np.unique(np.quantile(rows[:, c].astype(np.float64), np.linspace(0, 1, 11))).tolist() for c in range(3)]))
            """,
            path,
        ])
        let expected = try JSONDecoder().decode([[Double]].self, from: Data(output.utf8))
        let baseline = try #require(try hub.models.register(name: "noise", paths: [model], baseline: path).baseline)
        #expect(baseline.rows == 500 && baseline.features.map(\.name) == ["0", "1", "2"])
        for (feature, edges) in zip(baseline.features, expected) {
            let bins = try #require(feature.bins)
            #expect(bins.edges.count == edges.count)
            for (mine, numpys) in zip(bins.edges, edges) { #expect(abs(mine - numpys) <= 1e-9 * max(1, abs(numpys))) }
            #expect(feature.summary.histogram?.reduce(0, +) == 500)
        }
    }

    @Test func aFileThatIsNeitherCSVNorNpyIsRefusedNamingIt() throws {
        let model = try hub.write("model.bin", "weights")
        let text = try hub.write("train.txt", "1,2\n")
        #expect(throws: RegistryError.invalidBaseline(text, reason: "expected a .csv or .npy file of the training inputs")) {
            try hub.models.register(name: "flowers", paths: [model], baseline: text)
        }
        let fake = try hub.write("train.npy", "1,2\n3,4\n")
        #expect {
            try hub.models.register(name: "flowers", paths: [model], baseline: fake)
        } throws: { error in
            "\(error)".contains("the baseline \(fake) cannot be used: it does not start as a .npy file does")
        }
        #expect(try hub.models.list().isEmpty)
    }

    @Test func aTextValueInANumericColumnIsRefusedWithItsRowAndNothingIsRegistered() throws {
        let model = try hub.write("model.bin", "weights")
        let csv = try hub.write("train.csv", "a,b\n1,2\n3,x\n")
        #expect {
            try hub.models.register(name: "flowers", paths: [model], baseline: csv)
        } throws: { error in
            "\(error)".contains("the baseline \(csv) cannot be used: row 3, column 2 (b): 'x' is not a number")
                && "\(error)".contains("nothing was registered")
        }
        let ragged = try hub.write("ragged.csv", "a,b\n1,2\n3\n")
        #expect {
            try hub.models.register(name: "flowers", paths: [model], baseline: ragged)
        } throws: { error in
            "\(error)".contains("row 3 has 1 field(s), the header 2")
        }
        #expect(try hub.models.list().isEmpty)
    }

    @Test(.enabled(if: NoCodeModels.shouldRun, "needs onnxruntime and skl2onnx in the hub's Python (scripts/setup)"))
    func aBaselineWithAnotherFeatureCountThanTheModelsInputsIsRefused() throws {
        let onnx = try NoCodeModels.irisONNX(in: hub.directory.url)
        let three = try hub.write("three.csv", "a,b,c\n1,2,3\n")
        #expect {
            try hub.models.register(name: "iris", paths: [onnx.path], baseline: three)
        } throws: { error in
            "\(error)".contains("the baseline \(three) cannot be used: it has 3 feature column(s) but the model's inputs")
                && "\(error)".contains("take 4 per row")
        }
        let words = try hub.write("words.csv", "a,b,c,d\nx,2,3,4\n")
        #expect {
            try hub.models.register(name: "iris", paths: [onnx.path], baseline: words)
        } throws: { error in
            "\(error)".contains("column 1 (a) holds 'x', not a number, but the model's inputs")
        }
        #expect(try hub.models.list().isEmpty)
        let four = try hub.write("four.csv", "a,b,c,d\n1,2,3,4\n5,6,7,8\n")
        #expect(try hub.models.register(name: "iris", paths: [onnx.path], baseline: four).baseline?.features.count == 4)
    }

    @Test func aPackagedModuleCarriesItsModelsBaselineInModuleJSON() throws {
        let model = try hub.write("model.bin", "weights")
        let csv = try hub.write("train.csv", "a\n1\n2\n")
        let registered = try hub.models.register(name: "flowers", paths: [model], baseline: csv)
        try hub.write("src/score.py", "def init():\n    pass\n\ndef run(raw):\n    return raw\n")
        let module = try hub.modules.package(PackageRequest(
            name: "flowers-scorer", kind: .pythonScoring, model: VersionedName(name: "flowers", version: 1), entry: "score.py",
            source: hub.directory.url.appendingPathComponent("src")))
        #expect(module.manifest.baseline == registered.baseline)
    }
}
