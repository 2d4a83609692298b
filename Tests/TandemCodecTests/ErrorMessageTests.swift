import TandemCodec
import TandemCore
import Testing

@Suite("Error messages")
struct ErrorMessageTests {
    /// One sample of every case, with the words its description must contain.
    /// The switch is exhaustive, so a new case does not compile until listed here.
    static func fragments(_ error: BatchCodecError) -> [String] {
        switch error {
        case .tooShort: ["7 bytes", "shorter"]
        case .badMagic: ["magic"]
        case .unsupportedVersion: ["version 2", "not supported"]
        case .unknownCompression: ["compression", "9"]
        case .unknownFlags: ["flags", "80"]
        case .lengthOutOfBounds: ["body length", "4294967295", "67108864"]
        case .lengthMismatch: ["100", "99"]
        case .checksumMismatch: ["checksum", "deadbeef", "00000001"]
        case .truncated: ["uuid value"]
        case .malformed: ["date", "month 13"]
        case .decompressionFailed: ["decompress", "Corrupted block detected"]
        case .inconsistent: ["body has 1 rows, header says 2"]
        case .invalidBatch: ["encode", "holds no transaction"]
        case .compressionFailed: ["compress", "level 99"]
        }
    }

    static let samples: [BatchCodecError] = [
        .tooShort(length: 7), .badMagic, .unsupportedVersion(2), .unknownCompression(9), .unknownFlags(0x80),
        .lengthOutOfBounds(field: "body length", value: 4_294_967_295, limit: 67_108_864),
        .lengthMismatch(expected: 100, actual: 99),
        .checksumMismatch(stored: 0xDEAD_BEEF, computed: 1), .truncated(field: "uuid value"),
        .malformed(field: "date", reason: "month 13 day 1 out of range"),
        .decompressionFailed("Corrupted block detected"),
        .inconsistent("body has 1 rows, header says 2"), .invalidBatch("batch 1 holds no transaction"),
        .compressionFailed("level 99 outside 1...22"),
    ]

    static func isOneLine(_ s: String) -> Bool { !s.isEmpty && !s.contains { $0.isNewline } }

    @Test("every case has a one-line description naming the problem and a one-line hint", arguments: samples)
    func everyCase(_ error: BatchCodecError) {
        #expect(Self.isOneLine(error.description), "\(String(reflecting: error))")
        for fragment in Self.fragments(error) {
            #expect(error.description.contains(fragment), "\(error.description) should mention \(fragment)")
        }
        #expect(Self.isOneLine(error.hint))
        #expect("\(error)" == error.description)
    }

    @Test("the samples cover every case, and no two cases read alike")
    func distinct() {
        // Mirror names the case of a payload case; the only payload-less case is badMagic.
        let names = Set(Self.samples.map { Mirror(reflecting: $0).children.first?.label ?? "badMagic" })
        #expect(names.count == 14, "\(names.sorted())")
        #expect(Set(Self.samples.map(\.description)).count == Self.samples.count)
    }

    @Test("hints say what to do: upgrade for versions, report for encoder bugs, discard otherwise")
    func hints() {
        #expect(BatchCodecError.unsupportedVersion(2).hint.contains("version"))
        #expect(BatchCodecError.invalidBatch("x").hint.contains("bug"))
        #expect(BatchCodecError.compressionFailed("x").hint.contains("bug"))
        #expect(BatchCodecError.checksumMismatch(stored: 1, computed: 2).hint.contains("discarded"))
        #expect(BatchCodecError.unsupportedVersion(2).hint != BatchCodecError.badMagic.hint)
    }

    @Test("every error the hostile corpus provokes reads as one line with a hint")
    func corpusErrors() {
        let decoder = makeDecoder()
        for hostile in HostileCorpus.all {
            guard let error = decodeFailure(hostile.frame, decoder) else { continue }  // reported by the corpus test
            #expect(Self.isOneLine(error.description), "\(hostile.name): \(error.description)")
            #expect(error.description.utf8.count <= 300, "\(hostile.name): \(error.description.utf8.count) bytes")
            #expect(Self.isOneLine(error.hint), "\(hostile.name)")
        }
    }

    /// Text from a hostile frame that ends up in an error message must not break
    /// the one-line log format or make the message arbitrarily long: an operator's
    /// log (and anything parsing it) would otherwise show lines the peer wrote.
    static let injected: [HostileCase] = {
        typealias F = Fixture
        let forged = "x\nERROR tandem: forged log line"
        let long = String(repeating: "A", count: 100_000)
        func withRelation(named name: String, change: [UInt8]) -> [UInt8] {
            F.frame(
                body: F.body(
                    relations: [
                        F.relationBytes(name: F.string(name), columns: Array(repeating: F.column(), count: 20))
                    ],
                    transactions: [F.transaction(changes: [change])]))
        }
        return [
            HostileCase(
                "stream id with a newline", F.frame(header: F.header { $0.stream = F.string(forged) }),
                .malformed(field: "stream id")),
            HostileCase(
                "decimal with a newline",
                F.frame(
                    body: F.body(transactions: [
                        F.transaction(changes: [F.insert([[6] + F.string("1" + forged), F.value(.null)])])
                    ])),
                .malformed(field: "decimal value")),
            HostileCase(
                "MySQL GTID set with a newline",
                F.frame(body: F.body(transactions: [F.transaction(position: [3] + F.string(forged) + [0, 0])])),
                .malformed(field: "MySQL position")),
            HostileCase(
                "MySQL GTID set of 100 000 bytes",
                F.frame(body: F.body(transactions: [F.transaction(position: [3] + F.string(long) + [0, 0])])),
                .malformed(field: "MySQL position")),
            HostileCase(
                "relation name with a newline, row image cut short",
                withRelation(named: forged, change: F.insert([F.value(.null)])), .truncated(field: nil)),
            HostileCase(
                "relation name of 100 000 bytes, row image cut short",
                withRelation(named: long, change: F.insert([F.value(.null)])), .truncated(field: nil)),
            HostileCase(
                "relation name with a newline, wrong row images",
                withRelation(named: forged, change: F.change(new: [0])), .malformed(field: "row change")),
        ]
    }()

    @Test("text echoed from a hostile frame stays on one bounded line", arguments: injected)
    func injectedText(_ hostile: HostileCase) {
        guard let error = decodeFailure(hostile.frame, makeDecoder()) else {
            Issue.record("accepted")
            return
        }
        #expect(hostile.refusal.matches(error), "\(String(reflecting: error).prefix(200))")
        #expect(
            Self.isOneLine(error.description),
            "description spans lines: \(error.description.prefix(200).debugDescription)")
        #expect(error.description.utf8.count <= 300, "description is \(error.description.utf8.count) bytes long")
    }
}
