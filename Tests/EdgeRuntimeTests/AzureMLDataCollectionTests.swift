import EdgeRuntime
import FleetCore
import FleetTesting
import Foundation
import Logging
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `telemetry.format: azureml` end to end: the daemon serving a real Python scoring module, its
/// telemetry uploaded to a real SeaweedFS, read back with boto3, every line parsed by the
/// CloudEvents SDK (PyPI `cloudevents`), and the collections read the way Azure ML's monitoring
/// preprocessor reads them (pandas: `data` exploded into rows keyed `{correlationid}_{index}`).
@Suite(
    .serialized,
    .enabled(
        if: Fixtures.shouldRun(needing: "mosquitto") && InferenceFixtures.shouldRun && SeaweedFS.shouldRun,
        "needs mosquitto, SeaweedFS and a Python with boto3, cloudevents and pandas"))
struct AzureMLDataCollectionTests {
    /// A tabular module, the shape Azure ML's monitoring reads: a list of rows in, a list of rows out.
    static let score = """
        import json


        def init():
            pass


        def run(raw_data):
            rows = json.loads(raw_data)
            if not isinstance(rows, list):
                raise ValueError("expected a list of rows")
            return [{"label": "big" if row["x"] + row["y"] > 10 else "small", "total": row["x"] + row["y"]} for row in rows]
        """

    /// Parses every line of `objects` (key → JSON lines) with the CloudEvents SDK, then reads the
    /// `model_inputs` and `model_outputs` events as Azure ML's preprocessor does and joins them.
    static let reader = """
        import json, sys
        import pandas as pd
        from cloudevents.core.formats.json import JSONFormat

        objects = json.load(open(sys.argv[1]))
        events = []
        for key, text in objects.items():
            for line in text.split("\\n")[:-1]:
                event = JSONFormat().read(None, line)
                attributes = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in event.get_attributes().items()}
                events.append({"key": key, "attributes": attributes, "data": event.get_data()})

        def table(kind):
            rows = []
            for event in events:
                if event["attributes"]["type"] == "azureml.inference." + kind:
                    for index, value in enumerate(event["data"]):
                        rows.append({**value, "correlationid": f"{event['attributes']['correlationid']}_{index}"})
            return pd.DataFrame(rows)

        inputs, outputs = table("model_inputs"), table("model_outputs")
        joined = inputs.merge(outputs, on="correlationid", how="inner", validate="one_to_one")
        print(json.dumps({
            "events": events,
            "inputColumns": sorted(inputs.columns), "outputColumns": sorted(outputs.columns),
            "inputRows": len(inputs), "joinedRows": len(joined),
        }))
        """

    struct Read: Decodable {
        struct Event: Decodable {
            var key: String
            var attributes: [String: String]
            var data: JSONValue
        }

        var events: [Event]
        var inputColumns: [String]
        var outputColumns: [String]
        var inputRows: Int
        var joinedRows: Int
    }

    /// One request as the client saw it.
    struct Exchange {
        var body: Data
        var answer: Data
        var requestID: String
    }

    @Test(.timeLimit(.minutes(3)))
    func inputsAndOutputsArriveAsPairedCloudEventsInAzureMLsLayoutAndTheDefaultFormatIsUnchanged() async throws {
        let seaweed = try await SeaweedFS.start()
        defer { seaweed.stop() }
        try await seaweed.createBucket("telemetry")
        let device = try await DeviceFixture()
        defer { device.stop() }
        let work = try TemporaryDirectory(prefix: "azureml")
        try seaweed.writeCredentialsFile(to: work.file("credentials"))
        var config = device.config
        let port = try #require(config.localAPI?.port)
        config.storage = StorageSettings(
            url: "s3://telemetry/fleet", endpoint: seaweed.endpoint, region: seaweed.region,
            credentialsFile: work.file("credentials"))
        config.telemetry = TelemetryBufferSettings(uploadIntervalSeconds: 0.3)
        let daemon = Task { [config] in
            try await EdgeRuntimeDaemon(
                config: config, settings: RuntimeIntegrationTests.settings, logger: Logger(label: "runtime")
            ).run()
        }
        defer { daemon.cancel() }

        let bundle = try TestBundle.make(
            name: "tabular", version: 3, files: ["score.py": Data(Self.score.utf8)], command: nil, kind: .pythonScoring)
        try device.server.serve(bundle)
        func spec(_ name: String, _ format: TelemetryFormat?) -> ModuleSpec {
            ModuleSpec(
                name: name, kind: .pythonScoring, bundle: bundle.reference(baseURL: device.server.baseURL), workers: 1,
                telemetry: TelemetrySettings(sampleRate: 1, collectInputs: true, collectOutputs: true, format: format))
        }
        _ = try await device.publish(revision: 1, [spec("tabular", .azureml), spec("tabular-fleet", nil)])
        #expect(await eventually(timeout: .seconds(60)) {
            (try? device.status().desired) == DesiredStateStatus(revision: 1, status: .applied)
        })

        // A failed request is in neither collection. It goes first: a collection's records are
        // uploaded in order, so once the later ones are in storage, its would be too.
        #expect(try await Self.score(port: port, "tabular", Data(#"{"x": 1}"#.utf8), requestID: nil).0 == 500)
        var exchanges: [Exchange] = []
        for n in 0..<6 {
            let body = Data(#"[{"x": \#(n), "y": \#(2 * n)}, {"x": \#(10 + n), "y": 1.5}]"#.utf8)
            // Half of the clients send their own request id; the others get one made for them.
            let (status, answer, requestID) = try await Self.score(port: port, "tabular", body, requestID: n % 2 == 0 ? "client-\(n)" : nil)
            #expect(status == 200)
            exchanges.append(Exchange(body: body, answer: answer, requestID: requestID))
        }
        let fleetBody = Data(#"[{"x": 1, "y": 2}]"#.utf8)
        #expect(try await Self.score(port: port, "tabular-fleet", fleetBody, requestID: nil).0 == 200)

        var objects: [String: String] = [:]
        #expect(await eventually(timeout: .seconds(30)) {
            objects = (try? seaweed.objects(bucket: "telemetry", prefix: "fleet/modelDataCollector/")) ?? [:]
            func lines(_ collection: String) -> Int {
                objects.filter { $0.key.contains("/\(collection)/") }.values.reduce(0) { $0 + $1.split(separator: "\n").count }
            }
            return lines("model_inputs") >= 6 && lines("model_outputs") >= 6
        })
        let file = work.file("objects.json")
        try JSONEncoder().encode(objects).write(to: URL(fileURLWithPath: file))
        let output = try Fixtures.run(InferenceFixtures.python, ["-c", Self.reader, file])
        let read = try JSONDecoder().decode(Read.self, from: Data(output.utf8))

        // Keys: {prefix}/modelDataCollector/{module}/{collection}/YYYY/MM/DD/HH/{deviceId}-{bufferId}-{first}-{last}.jsonl
        let key = /fleet\/modelDataCollector\/tabular\/(model_inputs|model_outputs)\/\d{4}\/\d{2}\/\d{2}\/\d{2}\/gw-001-[0-9a-f]{16}-\d+-\d+\.jsonl/
        for event in read.events {
            let match = try #require(try key.wholeMatch(in: event.key), "unexpected key \(event.key)")
            #expect(event.attributes["type"] == "azureml.inference.\(match.1)")
        }
        let inputs = read.events.filter { $0.attributes["type"] == "azureml.inference.model_inputs" }
        let outputs = read.events.filter { $0.attributes["type"] == "azureml.inference.model_outputs" }
        #expect(inputs.count == 6 && outputs.count == 6)
        #expect(Set(read.events.compactMap { $0.attributes["id"] }).count == 12)

        // One input and one output per correlation id, holding what was sent and answered.
        let inputByCorrelation = Dictionary(grouping: inputs) { $0.attributes["correlationid"] ?? "" }
        let outputByCorrelation = Dictionary(grouping: outputs) { $0.attributes["correlationid"] ?? "" }
        #expect(inputByCorrelation.count == 6 && inputByCorrelation.values.allSatisfy { $0.count == 1 })
        #expect(Set(inputByCorrelation.keys) == Set(outputByCorrelation.keys))
        for exchange in exchanges {
            let input = try #require(inputs.first { $0.attributes["xrequestid"] == exchange.requestID })
            let output = try #require(outputByCorrelation[input.attributes["correlationid"] ?? ""]?.first)
            #expect(input.data == (try JSONDecoder().decode(JSONValue.self, from: exchange.body)))
            #expect(output.data == (try JSONDecoder().decode(JSONValue.self, from: exchange.answer)))
            #expect(output.attributes["xrequestid"] == exchange.requestID)
            #expect(input.attributes["contentrange"] == "bytes 0-\(exchange.body.count - 1)/\(exchange.body.count)")
            #expect(output.attributes["contentrange"] == "bytes 0-\(exchange.answer.count - 1)/\(exchange.answer.count)")
            for event in [input, output] {
                #expect(event.attributes["specversion"] == "1.0")
                #expect(event.attributes["source"] == "/devices/gw-001/modules/tabular")
                #expect(event.attributes["datacontenttype"] == "application/json")
                #expect(event.attributes["modelversion"] == "3")
                #expect(event.attributes["collectdatatype"] == "builtins.list")
                #expect(event.attributes["agent"] == "edge-runtime/\(runtimeVersion)")
                #expect(event.attributes["time"]?.hasSuffix("+00:00") == true)
            }
        }
        #expect(exchanges.filter { $0.requestID.hasPrefix("client-") }.count == 3)

        // Read as Azure ML's monitoring reads them: one row per record, the features as columns.
        #expect(read.inputColumns == ["correlationid", "x", "y"])
        #expect(read.outputColumns == ["correlationid", "label", "total"])
        #expect(read.inputRows == 12 && read.joinedRows == 12)

        // The module without a format still writes `inference` records into the device's objects.
        var records: [TelemetryRecord] = []
        #expect(await eventually(timeout: .seconds(30)) {
            let texts = (try? seaweed.gunzippedObjects(bucket: "telemetry", prefix: "fleet/gw-001/")) ?? [:]
            records = texts.values.flatMap { $0.split(separator: "\n") }.compactMap {
                try? FleetJSON.decode(TelemetryRecord.self, from: Data($0.utf8))
            }
            return records.contains { $0.kind == .inference }
        })
        let inference = records.filter { $0.kind == .inference }
        #expect(inference.count == 1 && inference.first?.module == "tabular-fleet")
        guard case .object(let data) = inference.first?.data else { Issue.record("no inference record"); return }
        #expect(data["input"] == (try JSONDecoder().decode(JSONValue.self, from: fleetBody)))
        #expect(data["bundle"] == .string(bundle.digest.description) && data["status"] == .number(200))
        #expect(try seaweed.objects(bucket: "telemetry", prefix: "fleet/modelDataCollector/tabular-fleet/").isEmpty)
    }

    /// Posts `body` to the module's score endpoint; returns the status, the answer and the
    /// `x-request-id` the runtime answered with.
    static func score(port: Int, _ module: String, _ body: Data, requestID: String?) async throws -> (Int, Data, String) {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/v1/modules/\(module)/score")!)
        request.httpMethod = "POST"
        request.httpBody = body
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        if let requestID { request.setValue(requestID, forHTTPHeaderField: "x-request-id") }
        request.timeoutInterval = 30
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as? HTTPURLResponse
        return (http?.statusCode ?? 0, data, http?.value(forHTTPHeaderField: "x-request-id") ?? "")
    }
}
