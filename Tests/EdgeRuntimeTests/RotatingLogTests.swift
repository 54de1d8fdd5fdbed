@testable import EdgeRuntime
import FleetTesting
import Foundation
import Testing

@Suite struct RotatingLogTests {
    @Test func rotatesAtTheCapAndKeepsOnlyTheConfiguredFiles() throws {
        let directory = try TemporaryDirectory(prefix: "rotating-log")
        let dataDirectory = DataDirectory(directory.url)
        try dataDirectory.create()
        let url = dataDirectory.log(of: "m")
        let log = RotatingLog(url: url, maximumBytes: 100, keep: 2)
        for index in 0..<50 {
            log.write(Data("line \(String(format: "%04d", index)) ....\n".utf8))
        }
        log.close()
        let files = try FileManager.default.contentsOfDirectory(atPath: dataDirectory.logs.path).sorted()
        #expect(files == ["m.log", "m.log.1", "m.log.2"])
        for file in files {
            let size = try FileManager.default.attributesOfItem(atPath: dataDirectory.logs.appendingPathComponent(file).path)[.size] as! NSNumber
            #expect(size.intValue <= 100)
        }
        let tail = try ModuleLogReader(dataDirectory: dataDirectory, module: "m").tail(3)
        #expect(tail == ["line 0047 ....", "line 0048 ....", "line 0049 ...."])
    }
}
