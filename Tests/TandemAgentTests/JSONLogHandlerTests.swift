import Foundation
import Logging
import Synchronization
import Testing

@testable import TandemAgent

/// `JSONLogHandler`'s lines: one JSON object per line, strings escaped, metadata an object.
@Suite struct JSONLogHandlerTests {
    /// 2026-12-07T10:58:51.123Z.
    static let fixedTime = timespec(tv_sec: 1_796_641_131, tv_nsec: 123_456_789)

    /// The lines a handler wrote.
    final class Lines: Sendable {
        let lines = Mutex<[String]>([])
    }

    /// A logger whose handler writes into the returned box.
    static func capturingLogger(
        metadata: Logger.Metadata = [:], provider: Logger.MetadataProvider? = nil
    ) -> (Logger, Lines) {
        let lines = Lines()
        var handler = JSONLogHandler(
            label: "tandem.agent", metadataProvider: provider,
            write: { line in lines.lines.withLock { $0.append(line) } }, now: { fixedTime })
        handler.metadata = metadata
        handler.logLevel = .debug
        return (Logger(label: "tandem.agent", factory: { _ in handler }), lines)
    }

    @Test func aLineHasTheFieldsInOrder() {
        let line = JSONLogHandler.line(
            time: Self.fixedTime, level: .warning, label: "tandem.agent", message: "link: down",
            metadata: ["site": "idc"], source: "TandemAgent")
        #expect(
            line
                == #"{"time":"2026-12-07T10:58:51.123Z","level":"warning","label":"tandem.agent","message":"link: down","metadata":{"site":"idc"},"source":"TandemAgent"}"#
                + "\n")
    }

    @Test func timesAreUTCWithMilliseconds() {
        #expect(JSONLogHandler.rfc3339(timespec(tv_sec: 0, tv_nsec: 0)) == "1970-01-01T00:00:00.000Z")
        #expect(
            JSONLogHandler.rfc3339(timespec(tv_sec: 951_782_400, tv_nsec: 999_999_999)) == "2000-02-29T00:00:00.999Z")
    }

    @Test func quotesNewlinesAndControlCharactersAreEscaped() throws {
        let message = "say \"hi\"\\ now\nnext\r\tend \u{01}\u{1F}\u{7F}\u{08}\u{0C} é ✓ \u{2028}"
        let line = JSONLogHandler.line(
            time: Self.fixedTime, level: .info, label: "a\"b", message: message, metadata: ["k\n": "v\u{00}"],
            source: "S")
        #expect(line.hasSuffix("}\n"))
        #expect(!line.dropLast().contains("\n"), "one line")
        #expect(line.contains(#""message":"say \"hi\"\\ now\nnext\r\tend \u0001\u001f\u007f\b\f é ✓ \u2028""#))
        // A real JSON parser reads back exactly what was logged.
        let object = try #require(
            JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["message"] as? String == message)
        #expect(object["label"] as? String == "a\"b")
        #expect((object["metadata"] as? [String: Any])?["k\n"] as? String == "v\u{00}")
    }

    @Test func metadataIsAnObjectMergedFromHandlerProviderAndCall() throws {
        let provider = Logger.MetadataProvider { ["request": "7", "site": "from-provider"] }
        let (logger, lines) = Self.capturingLogger(metadata: ["site": "idc", "pair": "acme"], provider: provider)
        logger.info(
            "applied",
            metadata: [
                "batches": .stringConvertible(42), "tables": ["a", "b"], "position": ["engine": "postgresql"],
                "pair": "override",
            ])
        let captured = lines.lines.withLock { $0 }
        #expect(captured.count == 1)
        let first = try #require(captured.first)
        let object = try #require(JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any])
        #expect(object["level"] as? String == "info")
        #expect(object["message"] as? String == "applied")
        #expect(object["source"] as? String == "TandemAgentTests")
        let metadata = try #require(object["metadata"] as? [String: Any])
        #expect(metadata["site"] as? String == "from-provider")
        #expect(metadata["pair"] as? String == "override")
        #expect(metadata["request"] as? String == "7")
        #expect(metadata["batches"] as? String == "42")
        #expect(metadata["tables"] as? [String] == ["a", "b"])
        #expect((metadata["position"] as? [String: String]) == ["engine": "postgresql"])
    }

    @Test func emptyMetadataIsAnEmptyObject() {
        let line = JSONLogHandler.line(
            time: Self.fixedTime, level: .error, label: "l", message: "m", metadata: [:], source: "s")
        #expect(line.contains(#","metadata":{},"#))
    }
}
