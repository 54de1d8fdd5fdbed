import FleetCore
import Foundation
import Testing

/// AWS's published Signature Version 4 test suite (aws-sig-v4-test-suite): region us-east-1, service
/// "service", key AKIDEXAMPLE, 2015-08-30T12:36:00Z. Each case checks all three steps.
@Suite struct SigV4SignerTests {
    struct Vector: Sendable, CustomTestStringConvertible {
        var name: String
        var method: String
        var path: String
        var query: [(name: String, value: String)] = []
        var headers: [(name: String, value: String)] = []
        var payloadHash = SigV4SignerTests.emptyHash
        var canonicalRequest: String
        var stringToSignHash: String
        var signature: String
        var testDescription: String { name }
    }

    static let emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    static let amzDate = "20150830T123600Z"
    static let basicHeaders = [(name: "Host", value: "example.amazonaws.com"), (name: "X-Amz-Date", value: amzDate)]
    static let signer = SigV4Signer(
        credentials: AWSCredentials(accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        region: "us-east-1", service: "service")

    static let vectors: [Vector] = [
        Vector(
            name: "get-vanilla", method: "GET", path: "/", headers: basicHeaders,
            canonicalRequest: "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(emptyHash)",
            stringToSignHash: "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
            signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        Vector(
            name: "post-vanilla", method: "POST", path: "/", headers: basicHeaders,
            canonicalRequest: "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(emptyHash)",
            stringToSignHash: "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
            signature: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
        Vector(
            name: "get-vanilla-query-order-key-case", method: "GET", path: "/",
            query: [("Param2", "value2"), ("Param1", "value1")], headers: basicHeaders,
            canonicalRequest:
                "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(emptyHash)",
            stringToSignHash: "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
            signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
        Vector(
            name: "get-vanilla-utf8-query", method: "GET", path: "/", query: [("ሴ", "bar")], headers: basicHeaders,
            canonicalRequest:
                "GET\n/\n%E1%88%B4=bar\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(emptyHash)",
            stringToSignHash: "eb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073",
            signature: "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"),
        Vector(
            name: "get-header-key-duplicate", method: "GET", path: "/",
            headers: [
                ("Host", "example.amazonaws.com"), ("My-Header1", "value2"), ("My-Header1", "value2"),
                ("My-Header1", "value1"), ("X-Amz-Date", amzDate),
            ],
            canonicalRequest:
                "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n\(emptyHash)",
            stringToSignHash: "dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c",
            signature: "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"),
        Vector(
            name: "get-header-value-trim", method: "GET", path: "/",
            headers: [
                ("Host", "example.amazonaws.com"), ("My-Header1", " value1"), ("My-Header2", " \"a   b   c\""),
                ("X-Amz-Date", amzDate),
            ],
            canonicalRequest:
                "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\nx-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\n\(emptyHash)",
            stringToSignHash: "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
            signature: "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"),
        Vector(
            name: "get-utf8", method: "GET", path: "/ሴ", headers: basicHeaders,
            canonicalRequest: "GET\n/%E1%88%B4\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(emptyHash)",
            stringToSignHash: "2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102",
            signature: "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"),
        Vector(
            name: "get-space-unnormalized", method: "GET", path: "/example space/", headers: basicHeaders,
            canonicalRequest:
                "GET\n/example%20space/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(emptyHash)",
            stringToSignHash: "63ee75631ed7234ae61b5f736dfc7754cdccfedbff4b5128a915706ee9390d86",
            signature: "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"),
        Vector(
            name: "post-header-key-sort", method: "POST", path: "/",
            headers: [("Host", "example.amazonaws.com"), ("My-Header1", "value1"), ("X-Amz-Date", amzDate)],
            canonicalRequest:
                "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n\(emptyHash)",
            stringToSignHash: "9368318c2967cf6de74404b30c65a91e8f6253e0a8659d6d5319f1a812f87d65",
            signature: "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"),
        Vector(
            name: "post-x-www-form-urlencoded", method: "POST", path: "/",
            headers: [
                ("Content-Type", "application/x-www-form-urlencoded"), ("Host", "example.amazonaws.com"),
                ("Content-Length", "13"), ("X-Amz-Date", amzDate),
                ("X-Amz-Content-Sha256", "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"),
            ],
            payloadHash: "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
            canonicalRequest: """
                POST
                /

                content-length:13
                content-type:application/x-www-form-urlencoded
                host:example.amazonaws.com
                x-amz-content-sha256:9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e
                x-amz-date:20150830T123600Z

                content-length;content-type;host;x-amz-content-sha256;x-amz-date
                9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e
                """,
            stringToSignHash: "b1edd1d03544c25390e32085d55b57acc9a3961bb59415ff86c45c3d89d16cfb",
            signature: "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b"),
    ]

    @Test(arguments: vectors)
    func matchesThePublishedVector(_ vector: Vector) {
        let request = SigV4Signer.Request(
            method: vector.method, path: vector.path, query: vector.query, headers: vector.headers,
            payloadHash: vector.payloadHash)
        let canonical = Self.signer.canonicalRequest(request)
        #expect(canonical == vector.canonicalRequest)
        let toSign = Self.signer.stringToSign(canonicalRequest: canonical, amzDate: Self.amzDate)
        #expect(toSign == "AWS4-HMAC-SHA256\n\(Self.amzDate)\n20150830/us-east-1/service/aws4_request\n\(vector.stringToSignHash)")
        #expect(Self.signer.signature(stringToSign: toSign, amzDate: Self.amzDate) == vector.signature)
        #expect(
            Self.signer.authorization(request, amzDate: Self.amzDate)
                == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                + "SignedHeaders=\(Self.signer.signedHeaders(request)), Signature=\(vector.signature)")
    }

    /// AWS's S3 documentation example (GET Object with a Range header, examplebucket, 2013-05-24).
    @Test func matchesTheS3DocumentationExample() {
        let signer = SigV4Signer(
            credentials: AWSCredentials(accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            region: "us-east-1")
        let request = SigV4Signer.Request(
            method: "GET", path: "/test.txt",
            headers: [
                ("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9"), ("x-amz-content-sha256", Self.emptyHash),
                ("x-amz-date", "20130524T000000Z"),
            ],
            payloadHash: Self.emptyHash)
        #expect(
            signer.signature(
                stringToSign: signer.stringToSign(canonicalRequest: signer.canonicalRequest(request), amzDate: "20130524T000000Z"),
                amzDate: "20130524T000000Z") == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    @Test func readsTheProfileFromASharedCredentialsFile() throws {
        let text = """
            [default]
            aws_access_key_id = AKIDDEFAULT
            aws_secret_access_key = secret/default

            # the device's own key
            [device]
            aws_access_key_id=AKIDDEVICE
            aws_secret_access_key=secret+device
            """
        #expect(try AWSCredentials.parse(text, path: "creds") == AWSCredentials(accessKeyId: "AKIDDEFAULT", secretAccessKey: "secret/default"))
        #expect(
            try AWSCredentials.parse(text, path: "creds", profile: "device")
                == AWSCredentials(accessKeyId: "AKIDDEVICE", secretAccessKey: "secret+device"))
        #expect(throws: ObjectStoreError.self) { try AWSCredentials.parse(text, path: "creds", profile: "missing") }
    }
}
