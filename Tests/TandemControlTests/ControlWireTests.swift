import Foundation
import Logging
import SeededRandom
import TandemControl
import Testing

@Suite("ControlWire: the control socket's JSON lines")
struct ControlWireTests {
    static func decode(_ text: String) -> Result<ControlRequest, ControlWireError> {
        decode(Array(text.utf8))
    }

    static func decode(_ bytes: [UInt8]) -> Result<ControlRequest, ControlWireError> {
        do throws(ControlWireError) { return .success(try ControlWire.decodeRequest(bytes)) } catch {
            return .failure(error)
        }
    }

    @Test(
        "requests round-trip", arguments: [ControlRequest.status] + Logger.Level.allCases.map(ControlRequest.logLevel))
    func requestsRoundTrip(request: ControlRequest) throws {
        let line = ControlWire.encode(request)
        #expect(line.last == 0x0A)
        #expect(line.dropLast().contains(0x0A) == false)
        #expect(try ControlWire.decodeRequest(Array(line.dropLast())) == request)
    }

    @Test func theDocumentedLinesDecode() throws {
        #expect(try ControlWire.decodeRequest(Array(#"{"request":"status"}"#.utf8)) == .status)
        #expect(
            try ControlWire.decodeRequest(Array(#" { "level" : "debug", "request" : "log-level" } "#.utf8))
                == .logLevel(.debug))
    }

    @Test(
        "hostile requests are refused with a specific error",
        arguments: [
            ("", ControlWireError.Kind.notJSON), ("   ", .notJSON), ("status", .notJSON), ("{\"request\":", .notJSON),
            ("[1,2]", .notAnObject), ("\"status\"", .notAnObject), ("42", .notAnObject), ("null", .notAnObject),
            ("{}", .missingRequest), ("{\"request\":5}", .badField("request")),
            ("{\"request\":null}", .badField("request")), ("{\"request\":\"shutdown\"}", .unknownRequest("shutdown")),
            ("{\"request\":\"STATUS\"}", .unknownRequest("STATUS")),
            ("{\"request\":\"status\",\"force\":true}", .unexpectedField("force")),
            ("{\"request\":\"log-level\"}", .badField("level")),
            ("{\"request\":\"log-level\",\"level\":\"loud\"}", .badField("level")),
            ("{\"request\":\"log-level\",\"level\":7}", .badField("level")),
            ("{\"request\":\"log-level\",\"level\":\"debug\",\"for\":\"ever\"}", .unexpectedField("for")),
        ])
    func hostile(text: String, kind: ControlWireError.Kind) {
        switch Self.decode(text) {
        case .success(let request): Issue.record("\(text) decoded as \(request)")
        case .failure(let error):
            #expect(error.kind == kind, "\(text): \(error.description)")
            #expect(!error.description.isEmpty && !error.hint.isEmpty)
        }
    }

    @Test func anUnknownRequestIsNamedAndTheKnownOnesListed() throws {
        guard case .failure(let error) = Self.decode(#"{"request":"drop-everything"}"#) else {
            Issue.record("decoded")
            return
        }
        #expect(error.description == #"unknown request "drop-everything""#)
        #expect(error.hint.contains("status, log-level"))
    }

    @Test func oversizedNotUTF8AndDeeplyNestedInput() {
        let big =
            Array(#"{"request":"status","pad":""#.utf8) + [UInt8](repeating: 0x61, count: ControlWire.maximumBytes)
            + Array(#""}"#.utf8)
        #expect(Self.kind(big) == .tooLarge)
        #expect(Self.kind([0xFF, 0xFE, 0x7B, 0x7D]) == .notJSON)
        let nested = String(repeating: "[", count: 20_000) + String(repeating: "]", count: 20_000)
        #expect([.notJSON, .notAnObject].contains(Self.kind(Array(nested.utf8))))
        let nestedObject = String(repeating: "{\"a\":", count: 10_000) + "1" + String(repeating: "}", count: 10_000)
        #expect([.notJSON, .missingRequest].contains(Self.kind(Array(nestedObject.utf8))))
    }

    /// Random bytes and random mutations of valid lines never crash and never become a request
    /// other than one a valid line can say.
    @Test func fuzzedInputNeverCrashes() {
        var random = SplitMix64(seed: 0xC0_47_20_11)
        let valid = Array(#"{"request":"log-level","level":"debug"}"#.utf8)
        for round in 0..<3_000 {
            var bytes: [UInt8]
            if round.isMultiple(of: 2) {
                bytes = (0..<Int.random(in: 0..<64, using: &random)).map { _ in
                    UInt8.random(in: 0...255, using: &random)
                }
            } else {
                bytes = valid
                for _ in 0..<Int.random(in: 1...4, using: &random) {
                    bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
                }
            }
            if case .success(let request) = Self.decode(bytes) {
                #expect(request.name == "status" || request.name == "log-level")
            }
        }
    }

    @Test func responsesRoundTripOnOneLine() throws {
        let pretty = Array("{\n  \"site\" : \"cloud\",\n  \"n\" : 3\r\n}".utf8)
        let line = ControlWire.encode(ControlResult.ok(pretty))
        #expect(line.last == 0x0A && !line.dropLast().contains(0x0A) && !line.contains(0x0D))
        guard case .ok(let object) = try ControlWire.decodeResponse(Array(line.dropLast())) else {
            Issue.record("not ok")
            return
        }
        #expect(String(decoding: object, as: UTF8.self) == #"{"n":3,"site":"cloud"}"#)
        let refusal = ControlResult.failed(error: "user \"bob\"\nmay not", hint: "usermod -aG x bob")
        let refusalLine = ControlWire.encode(refusal)
        #expect(!refusalLine.dropLast().contains(0x0A))
        #expect(try ControlWire.decodeResponse(Array(refusalLine.dropLast())) == refusal)
    }

    @Test(
        "unreadable responses are errors",
        arguments: [
            ("", ControlWireError.Kind.notJSON), ("{\"ok\":true}", .badField("result")),
            ("{\"ok\":true,\"result\":[1]}", .badField("result")), ("{\"ok\":false}", .badField("error")),
            ("{\"result\":{}}", .badField("ok")), ("[]", .notAnObject),
        ])
    func badResponses(text: String, kind: ControlWireError.Kind) {
        do throws(ControlWireError) {
            let result = try ControlWire.decodeResponse(Array(text.utf8))
            Issue.record("\(text) decoded as \(result)")
        } catch {
            #expect(error.kind == kind)
        }
    }

    static func kind(_ bytes: [UInt8]) -> ControlWireError.Kind? {
        if case .failure(let error) = decode(bytes) { return error.kind }
        return nil
    }
}
