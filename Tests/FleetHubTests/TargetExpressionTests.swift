import FleetHub
import Testing

struct TargetExpressionTests {
    let plant1Edge = ["site": "plant-1", "tier": "edge"]
    let plant2 = ["site": "plant-2"]

    func matches(_ target: String, _ tags: [String: String]) throws -> Bool {
        try TargetExpression(parsing: target).matches(tags)
    }

    @Test func equalityAndConjunction() throws {
        #expect(try matches("site=plant-1", plant1Edge))
        #expect(try matches("site == plant-1 AND tier=edge", plant1Edge))
        #expect(try !matches("site=plant-1 and tier=cloud", plant1Edge))
        #expect(try !matches("site=plant-1", plant2))
    }

    @Test func inequalityMatchesMissingTags() throws {
        #expect(try matches("tier!=edge", plant2))
        #expect(try !matches("tier!=edge", plant1Edge))
    }

    @Test func setMembership() throws {
        #expect(try matches("site in (plant-1, plant-3)", plant1Edge))
        #expect(try !matches("site in (plant-1,plant-3)", plant2))
        #expect(try matches("site not in (plant-1)", plant2))
        #expect(try !matches("site NOT IN (plant-1)", plant1Edge))
        #expect(try matches("site in ('plant-2', \"x y\")", plant2))
    }

    @Test func emptyTargetMatchesNothingAndStarMatchesAll() throws {
        #expect(try !matches("", plant1Edge))
        #expect(try !matches("   ", [:]))
        #expect(try matches("*", [:]))
    }

    @Test(arguments: ["site", "site=", "site=a tier=b", "site in plant-1", "site in (a", "=a", "site ! a", "site=a AND", "s%=1"])
    func refusesMalformedTargets(_ text: String) {
        #expect(throws: TargetSyntaxError.self) { try TargetExpression(parsing: text) }
    }
}
