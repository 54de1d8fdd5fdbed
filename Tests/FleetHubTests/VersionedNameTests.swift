import FleetHub
import Testing

struct VersionedNameTests {
    @Test func parsesNameWithAndWithoutVersion() throws {
        #expect(try VersionedName(parsing: "iris:3") == VersionedName(name: "iris", version: 3))
        #expect(try VersionedName(parsing: "iris-scorer") == VersionedName(name: "iris-scorer", version: nil))
        #expect(try VersionedName(parsing: "iris:3").description == "iris:3")
    }

    @Test(arguments: ["", ":1", "iris:", "iris:0", "iris:-1", "iris:x", "a:1:2", "-iris", "ir is"])
    func refusesMalformedReferences(_ text: String) {
        #expect(throws: RegistryError.invalidReference(text)) { try VersionedName(parsing: text) }
    }

    @Test func exactReferenceNeedsAVersion() {
        #expect(throws: RegistryError.invalidReference("iris")) { try VersionedName(parsingExact: "iris") }
    }

    @Test func parsesTags() throws {
        #expect(try TagParser.parse(["site=plant-1", "tier = edge"]) == ["site": "plant-1", "tier": "edge"])
        #expect(throws: RegistryError.invalidTag("site")) { try TagParser.parse(["site"]) }
        #expect(throws: RegistryError.invalidTag("site=")) { try TagParser.parse(["site="]) }
    }
}
