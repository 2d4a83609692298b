import PropertyBased
import SeededRandom
import TandemCodec
import TandemCore
import Testing

/// The encoder configurations every round-trip property runs under.
struct CodecConfig: Sendable, CustomTestStringConvertible {
    var compression: BatchCompression
    var level: Int32
    var testDescription: String { compression == .none ? "uncompressed" : "zstd level \(level)" }

    static let all = [
        CodecConfig(compression: .none, level: 1), CodecConfig(compression: .zstd, level: 1),
        CodecConfig(compression: .zstd, level: 9),
    ]
}

/// One relation with a single untyped column, to carry any value.
let anyValueRelation = Relation(
    name: RelationName(schema: "s", name: "v"),
    columns: [Column(name: "v", type: .other, nativeType: "any")])

func singleValueBatch(_ values: [Value]) -> Batch {
    let relation = Relation(
        name: RelationName(schema: "s", name: "v"),
        columns: values.indices.map { Column(name: "c\($0)", type: .other, nativeType: "any") })
    return Batch(
        stream: StreamID("edge")!, sequence: 1,
        transactions: [
            Transaction(
                commitPosition: .postgresql(LSN(1)), commitTime: Timestamp(microsecondsSinceEpoch: 0),
                changes: [RowChange(relation: relation, kind: .insert, new: values)])
        ])
}

/// Encodes, decodes, checks equality both ways, and returns the encoded batch.
@discardableResult
func expectRoundTrip(
    _ batch: Batch, _ encoder: BatchEncoder, _ decoder: BatchDecoder,
    sourceLocation: SourceLocation = #_sourceLocation
) -> EncodedBatch? {
    let encoded: EncodedBatch
    do { encoded = try encoder.encode(batch) } catch {
        Issue.record("encode refused a valid batch: \(error)", sourceLocation: sourceLocation)
        return nil
    }
    do {
        let decoded = try decoder.decode(encoded.frame)
        #expect(decoded == batch, "decode(encode(batch)) differs from batch", sourceLocation: sourceLocation)
        #expect(try decoder.decodeHeader(encoded.frame) == encoded.header, sourceLocation: sourceLocation)
        // Canonical form: re-encoding what was decoded gives the same bytes, which
        // also compares every string byte for byte (String == is only canonical
        // equivalence, so "é" and "e\u{301}" would compare equal).
        #expect(
            try encoder.encode(decoded).frame == encoded.frame, "re-encoding the decoded batch changed the frame",
            sourceLocation: sourceLocation)
    } catch {
        Issue.record("decode refused a frame the encoder produced: \(error)", sourceLocation: sourceLocation)
    }
    return encoded
}

@Suite("Round trips")
struct RoundTripTests {
    @Test("every generated batch round-trips", .shrinking, arguments: CodecConfig.all)
    func batches(config: CodecConfig) async {
        let encoder = makeEncoder(config.compression, level: config.level)
        let decoder = makeDecoder()
        await propertyCheck(count: 150, input: Gen.batch) { batch in
            expectRoundTrip(batch, encoder, decoder)
        }
    }

    @Test("every generated value round-trips", .shrinking)
    func values() async {
        let plain = makeEncoder(.none), zstd = makeEncoder(.zstd)
        let decoder = makeDecoder()
        await propertyCheck(count: 400, input: Gen.value) { value in
            let batch = singleValueBatch([value])
            expectRoundTrip(batch, plain, decoder)
            expectRoundTrip(batch, zstd, decoder)
            let decoded = try decoder.decode(try plain.encode(batch).frame)
            #expect(decoded.transactions[0].changes[0].new == [value])
        }
    }

    /// The uncompressed frame must be exactly the documented layout, written by
    /// the test's own writer: this pins the format (spooled frames outlive builds).
    @Test("uncompressed frames match the documented layout byte for byte", .shrinking)
    func layout() async {
        let encoder = makeEncoder(.none)
        await propertyCheck(count: 150, input: Gen.batch) { batch in
            let encoded = try encoder.encode(batch)
            let body = Wire { $0.body(batch) }.bytes
            let header = Wire { $0.header(encoded.header) }.bytes
            #expect(encoded.frame == assembleFrame(header: header, body: body))
        }
    }

    @Test("zstd frames hold the documented layout around a zstd frame of the body")
    func zstdLayout() throws {
        var rng = SplitMix64(seed: 7)
        let encoder = makeEncoder(.zstd, level: 3)
        let decoder = makeDecoder()
        for _ in 0..<50 {
            let batch = Arb.batch(&rng)
            let encoded = try encoder.encode(batch)
            let parts = FrameParts(encoded.frame)
            #expect(parts.compression == BatchCompression.zstd.rawValue)
            #expect(parts.header == Wire { $0.header(encoded.header) }.bytes)
            #expect(Array(parts.body.prefix(4)) == [0x28, 0xB5, 0x2F, 0xFD], "body is not a zstd frame")
            #expect(parts.body == zstdCompress(Wire { $0.body(batch) }.bytes, level: 3))
            #expect(try decoder.decode(encoded.frame) == batch)
        }
    }

    /// Edge values named one by one, so that coverage never depends on luck.
    static let edgeValues: [(String, Value)] = [
        ("null", .null), ("unchanged", .unchanged), ("true", .bool(true)), ("false", .bool(false)),
        ("Int64.min", .int(.min)), ("Int64.max", .int(.max)), ("int 0", .int(0)), ("int -1", .int(-1)),
        ("UInt64.max", .uint(.max)), ("uint 0", .uint(0)),
        ("decimal 40+ digits", .decimal(ExactDecimal("1234567890123456789012345678901234567890.0123456789")!)),
        ("negative decimal", .decimal(ExactDecimal("-0.000000000000000000000000000000000000000001")!)),
        ("decimal NaN", .decimal(ExactDecimal("NaN")!)), ("decimal -Infinity", .decimal(ExactDecimal("-Infinity")!)),
        ("float32 NaN", .float32(.nan)), ("float32 NaN payload", .float32(Float(bitPattern: 0xFFC0_0001))),
        ("float32 signaling NaN", .float32(.signalingNaN)), ("float32 +inf", .float32(.infinity)),
        ("float32 -inf", .float32(-.infinity)), ("float32 -0", .float32(-0.0)),
        ("float32 subnormal", .float32(.leastNonzeroMagnitude)),
        ("float32 max subnormal", .float32(Float(bitPattern: 0x007F_FFFF))),
        ("float64 NaN", .float64(.nan)), ("float64 NaN payload", .float64(Double(bitPattern: 0xFFF8_0000_0000_0001))),
        ("float64 +inf", .float64(.infinity)), ("float64 -inf", .float64(-.infinity)), ("float64 -0", .float64(-0.0)),
        ("float64 subnormal", .float64(.leastNonzeroMagnitude)), ("float64 max", .float64(.greatestFiniteMagnitude)),
        ("empty text", .text("")), ("NUL text", .text("a\u{0}b")), ("emoji text", .text("👩‍👩‍👧‍👦 ünïcödé 中文 \u{10FFFF}")),
        ("decomposed text", .text("e\u{301}")), ("precomposed text", .text("\u{E9}")),
        ("empty bytes", .bytes([])), ("zero bytes", .bytes([0, 0, 0])), ("all bytes", .bytes(Array(0...255))),
        ("zero date", .date(CivilDate(year: 0, month: 0, day: 0))),
        ("negative year", .date(CivilDate(year: -4712, month: 11, day: 24))),
        ("Int32.min year", .date(CivilDate(year: .min, month: 12, day: 31))),
        (
            "negative MySQL TIME",
            .time(TimeOfDay(hours: 838, minutes: 59, seconds: 59, microseconds: 999_999, negative: true))
        ),
        ("time Int64.min", .time(TimeOfDay(microseconds: .min))),
        ("timetz", .timeWithZone(TimeOfDay(hours: 23, minutes: 59, seconds: 59), offsetSeconds: -57_599)),
        ("timetz Int32 extremes", .timeWithZone(TimeOfDay(microseconds: .max), offsetSeconds: .min)),
        (
            "timestamp zero date",
            .timestamp(CivilDateTime(date: CivilDate(year: 0, month: 0, day: 0), time: TimeOfDay(microseconds: 0)))
        ),
        (
            "timestamp BC",
            .timestamp(CivilDateTime(date: CivilDate(year: -44, month: 3, day: 15), time: TimeOfDay(microseconds: 1)))
        ),
        ("timestamptz negative epoch", .timestampWithZone(Timestamp(microsecondsSinceEpoch: -1))),
        ("timestamptz min", .timestampWithZone(Timestamp(microsecondsSinceEpoch: .min))),
        ("interval", .interval(Interval(months: -1, days: 40, microseconds: -1))),
        ("interval extremes", .interval(Interval(months: .min, days: .max, microseconds: .min))),
        ("json", .json("{\"a\": [1, \"\\u0000\", null]}")), ("empty json", .json("")),
        ("uuid", .uuid(UUIDBytes(parsing: "123e4567-e89b-12d3-a456-426614174000")!)),
        ("uuid max", .uuid(UUIDBytes(high: .max, low: .max))),
        ("empty bits", .bits(BitString(count: 0, bytes: [])!)),
        ("9 bits", .bits(BitString(count: 9, bytes: [0xFF, 0x80])!)),
        ("empty array", .array([])), ("array of nulls", .array([.null, .unchanged, .null])),
        ("3-deep array", .array([.array([.array([.int(1), .text("x")]), .array([])]), .null])),
        ("8-deep array (decoder limit)", (0..<8).reduce(Value.int(1)) { v, _ in .array([v]) }),
        ("native", .native("[1,5)")), ("empty native", .native("")),
    ]

    @Test("named edge values round-trip", arguments: CodecConfig.all)
    func edgeValueRoundTrip(config: CodecConfig) throws {
        let encoder = makeEncoder(config.compression, level: config.level)
        let decoder = makeDecoder()
        for (name, value) in Self.edgeValues {
            let batch = singleValueBatch([value])
            let decoded = try decoder.decode(try encoder.encode(batch).frame)
            #expect(decoded.transactions[0].changes[0].new == [value], "\(name)")
            if case .text(let s) = value, case .text(let t)? = decoded.transactions[0].changes[0].new?[0] {
                #expect(Array(s.utf8) == Array(t.utf8), "\(name): text bytes changed")
            }
        }
        // All of them in one row image too.
        expectRoundTrip(singleValueBatch(Self.edgeValues.map(\.1)), encoder, decoder)
    }

    static let edgePositions: [(String, Position)] = [
        ("LSN 0", .postgresql(.zero)), ("LSN max", .postgresql(LSN(.max))),
        ("LSN", .postgresql(try! LSN(parsing: "16/B374D848"))),
        ("MariaDB one domain", .mariadb(try! MariaDBGTIDList(parsing: "0-1-42"))),
        (
            "MariaDB several domains",
            .mariadb(try! MariaDBGTIDList(parsing: "4294967295-4294967295-18446744073709551615,0-1-100,7-2-5"))
        ),
        (
            "MySQL set",
            .mysql(
                MySQLPosition(
                    gtidSet: try! MySQLGTIDSet(
                        parsing:
                            "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5:11:13-20,00000000-0000-0000-0000-000000000001:1"))
            )
        ),
        (
            "MySQL set with file/offset",
            .mysql(
                MySQLPosition(
                    gtidSet: try! MySQLGTIDSet(parsing: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-100"),
                    binlogFile: "binlog.000042", binlogOffset: .max))
        ),
        ("MySQL file without offset", .mysql(MySQLPosition(gtidSet: MySQLGTIDSet(), binlogFile: "mysql-bin.000001"))),
        ("MySQL offset without file", .mysql(MySQLPosition(gtidSet: MySQLGTIDSet(), binlogOffset: 0))),
    ]

    @Test("every position kind round-trips, with every change kind and chunk form", arguments: CodecConfig.all)
    func positionsAndChanges(config: CodecConfig) {
        let encoder = makeEncoder(config.compression, level: config.level)
        let decoder = makeDecoder()
        let relation = Relation(
            name: RelationName(schema: "public", name: "accounts"),
            columns: [
                Column(
                    name: "id", type: .integer(bits: 64, signed: true), nativeType: "bigint", nativeTypeID: 20,
                    isKey: true, isNullable: false),
                Column(name: "tags", type: .array(.array(.array(.text))), nativeType: "text[]", nativeTypeID: 1009),
                Column(
                    name: "amount", type: .decimal(precision: 40, scale: 2), nativeType: "numeric(40,2)",
                    nativeTypeID: 1700),
                Column(name: "free", type: .decimal(precision: nil, scale: nil), nativeType: "numeric"),
            ])
        let empty = Relation(name: RelationName(schema: "public", name: "no_columns"), columns: [])
        let row: [Value] = [
            .int(1), .array([.array([.array([.text("a")])])]), .decimal(ExactDecimal("-12.50")!), .null,
        ]
        let changes = [
            RowChange(relation: relation, kind: .insert, new: row),
            RowChange(relation: relation, kind: .update, new: row),
            RowChange(relation: relation, kind: .update, old: [.int(1), .unchanged, .unchanged, .unchanged], new: row),
            RowChange(relation: relation, kind: .delete, old: row),
            RowChange(relation: relation, kind: .copy, new: row),
            RowChange(relation: relation, kind: .update, old: row, new: row, duringCopy: true),
            RowChange(relation: relation, kind: .delete, old: row, duringCopy: true),
            RowChange(relation: relation, kind: .truncate(cascade: false, restartIdentity: false)),
            RowChange(relation: relation, kind: .truncate(cascade: true, restartIdentity: false)),
            RowChange(relation: relation, kind: .truncate(cascade: false, restartIdentity: true)),
            RowChange(relation: empty, kind: .truncate(cascade: true, restartIdentity: true)),
            RowChange(relation: empty, kind: .insert, new: []),
        ]
        for (name, position) in Self.edgePositions {
            let batch = Batch(
                stream: StreamID("site-a.to_site-b")!, sequence: .max,
                transactions: [
                    Transaction(
                        commitPosition: position, commitTime: Timestamp(microsecondsSinceEpoch: -1),
                        origin: "pg_origin_1",
                        chunk: TransactionChunk(index: 0, isFinal: false), changes: changes),
                    Transaction(
                        commitPosition: position, commitTime: Timestamp(microsecondsSinceEpoch: .min), origin: "",
                        chunk: TransactionChunk(index: .max, isFinal: true), changes: []),
                    Transaction(
                        commitPosition: position, commitTime: Timestamp(microsecondsSinceEpoch: .max),
                        changes: changes.reversed()),
                ])
            let encoded = expectRoundTrip(batch, encoder, decoder)
            #expect(encoded?.header.firstPosition == position, "\(name)")
        }
    }

    /// Guards the generator itself: a property over values is only as good as the
    /// values it draws.
    @Test("the value generator reaches every case and the edge values")
    func generatorCoverage() {
        var rng = SplitMix64(seed: 1)
        var cases = Set<String>()
        var maxDepth = 0, nan32 = false, nan64 = false, negZero = false, subnormal = false, negTime = false
        var zeroDate = false, negYear = false, bigDecimal = false, emoji = false, nul = false, emptyBytes = false
        func depth(_ v: Value) -> Int { if case .array(let e) = v { 1 + (e.map(depth).max() ?? 0) } else { 0 } }
        func visit(_ v: Value) {
            cases.insert(Arb.caseName(v))
            switch v {
            case .float32(let f): nan32 = nan32 || f.isNaN; subnormal = subnormal || f.isSubnormal
            case .float64(let d): nan64 = nan64 || d.isNaN; negZero = negZero || (d == 0 && d.sign == .minus)
            case .time(let t): negTime = negTime || t.microseconds < 0
            case .date(let d): zeroDate = zeroDate || d.isZeroDate; negYear = negYear || d.year < 0
            case .decimal(let d): bigDecimal = bigDecimal || d.text.count > 40
            case .text(let s):
                emoji = emoji || s.unicodeScalars.contains { $0.value > 0xFFFF }; nul = nul || s.contains("\0")
            case .bytes(let b): emptyBytes = emptyBytes || b.isEmpty
            case .array(let e): e.forEach(visit)
            default: break
            }
        }
        for _ in 0..<3000 {
            let v = Arb.value(&rng)
            maxDepth = max(maxDepth, depth(v))
            visit(v)
        }
        #expect(cases.count == Arb.valueCaseCount, "cases reached: \(cases.sorted())")
        #expect(maxDepth == 3)
        #expect(
            nan32 && nan64 && negZero && subnormal && negTime && zeroDate && negYear && bigDecimal && emoji && nul
                && emptyBytes)

        var engines = Set<DatabaseEngine>(), kinds = Set<String>(), sawOld = false, sawOrigin = false, sawChunk = false
        for _ in 0..<300 {
            let b = Arb.batch(&rng)
            engines.formUnion(b.transactions.map(\.commitPosition.engine))
            for t in b.transactions {
                sawOrigin = sawOrigin || t.origin != nil
                sawChunk = sawChunk || t.chunk != .whole
                for c in t.changes {
                    kinds.insert("\(c.kind)".prefix { $0 != "(" }.description)
                    sawOld = sawOld || (c.kind == .update && c.old != nil)
                }
            }
        }
        #expect(engines.count == 3 && kinds.count == 5 && sawOld && sawOrigin && sawChunk)
    }

    @Test("one decoder and one encoder serve many batches, and survive refusals")
    func reuse() throws {
        var rng = SplitMix64(seed: 99)
        let encoder = makeEncoder(.zstd)
        let decoder = makeDecoder()
        for i in 0..<60 {
            let batch = Arb.batch(&rng)
            let frame = try encoder.encode(batch).frame
            if i % 3 == 0 {
                // A zstd body that fails midway leaves the context in some state;
                // the next, valid frame must still decode.
                var parts = FrameParts(frame)
                parts.body[parts.body.count / 2] ^= 0x5A
                let bad = assembleFrame(header: parts.header, body: parts.body, compression: 1)
                _ = decodeFailure(bad, decoder)
            }
            #expect(try decoder.decode(frame) == batch)
        }
    }
}
