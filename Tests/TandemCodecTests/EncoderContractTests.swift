import TandemCodec
import TandemCore
import Testing

/// A batch with a label, as a test argument.
struct LabelledBatch: Sendable, CustomTestStringConvertible {
    var name: String
    var batch: Batch
    var testDescription: String { name }
    init(_ name: String, _ batch: Batch) { self.name = name; self.batch = batch }
}

@Suite("Encoder contract")
struct EncoderContractTests {
    static func batch(_ changes: [RowChange], sequence: UInt64 = 1) -> Batch {
        Batch(
            stream: StreamID("s1")!, sequence: sequence,
            transactions: [
                Transaction(
                    commitPosition: Fixture.position, commitTime: Timestamp(microsecondsSinceEpoch: 1), changes: changes
                )
            ])
    }

    static func column(_ type: LogicalType) -> Relation {
        Relation(name: RelationName(schema: "s", name: "t"), columns: [Column(name: "c", type: type, nativeType: "x")])
    }

    /// True when `encoder` refuses `batch` with `.invalidBatch`.
    static func refusesAsInvalid(_ encoder: BatchEncoder, _ batch: Batch) -> Bool {
        do { _ = try encoder.encode(batch); return false } catch {
            if case .invalidBatch = error { return true } else { return false }
        }
    }

    @Test("batches the format cannot hold are refused with .invalidBatch")
    func refusals() {
        let encoder = makeEncoder(.zstd)
        let t = Fixture.relation
        #expect(Self.refusesAsInvalid(encoder, Batch(stream: StreamID("s1")!, sequence: 1, transactions: [])))
        #expect(
            Self.refusesAsInvalid(
                encoder, Self.batch([RowChange(relation: t, kind: .insert, new: Fixture.row)], sequence: 0)))
        #expect(Self.refusesAsInvalid(encoder, Self.batch([RowChange(relation: t, kind: .insert, new: [.int(1)])])))
        // A copied row without a column's value could not be written over the DR row.
        var partial = Fixture.row
        partial[partial.count - 1] = .unchanged
        #expect(Self.refusesAsInvalid(encoder, Self.batch([RowChange(relation: t, kind: .copy, new: partial)])))
        #expect(
            Self.refusesAsInvalid(
                encoder, Self.batch([RowChange(relation: t, kind: .update, old: [.int(1)], new: Fixture.row)])))
        var reshaped = t
        reshaped.columns.removeLast()
        #expect(
            Self.refusesAsInvalid(
                encoder,
                Self.batch([
                    RowChange(relation: t, kind: .insert, new: Fixture.row),
                    RowChange(relation: reshaped, kind: .insert, new: [.int(1)]),
                ])))
        let small = makeEncoder(.none, limits: BatchLimits(maximumUncompressedBytes: 64))
        #expect(
            Self.refusesAsInvalid(
                small,
                Self.batch([
                    RowChange(relation: anyValueRelation, kind: .insert, new: [.bytes(Array(repeating: 1, count: 100))])
                ])))
        #expect(throws: BatchCodecError.self) { _ = try BatchEncoder(compression: .zstd, level: 99) }
        #expect(throws: BatchCodecError.self) { _ = try BatchEncoder(compression: .zstd, level: 0) }
    }

    /// Relations are keyed by name inside a batch: the same table in many changes
    /// and transactions is written once.
    @Test("a relation used many times is written once")
    func relationTable() throws {
        let changes = (0..<50).map {
            RowChange(relation: Fixture.relation, kind: .insert, new: [.int(Int64($0)), .null])
        }
        let batch = Batch(
            stream: StreamID("s1")!, sequence: 1,
            transactions: (0..<4).map { i in
                Transaction(
                    commitPosition: .postgresql(LSN(UInt64(i + 1))),
                    commitTime: Timestamp(microsecondsSinceEpoch: Int64(i)), changes: changes)
            })
        let body = FrameParts(try makeEncoder(.none).encode(batch).frame).body
        #expect(body.first == 1, "relation count")
        #expect(body == Wire { $0.body(batch) }.bytes)
    }

    /// Whatever the encoder accepts must decode back unchanged; otherwise the
    /// capture side ships a batch the receiver refuses (or silently changes) and
    /// the stream stops at it. So each of these must be refused up front with
    /// `.invalidBatch`, or round-trip.
    static let edges: [LabelledBatch] = {
        let nine = (0..<9).reduce(Value.int(1)) { v, _ in .array([v]) }
        let nineType = (0..<9).reduce(LogicalType.text) { t, _ in .array(t) }
        let empty = Position.mariadb(MariaDBGTIDList())
        return [
            LabelledBatch(
                "value arrays nested 9 deep", batch([RowChange(relation: anyValueRelation, kind: .insert, new: [nine])])
            ),
            LabelledBatch(
                "column type arrays nested 9 deep",
                batch([RowChange(relation: column(nineType), kind: .insert, new: [.null])])),
            LabelledBatch(
                "integer column 12 bits wide",
                batch([RowChange(relation: column(.integer(bits: 12, signed: true)), kind: .insert, new: [.int(1)])])),
            LabelledBatch(
                "decimal column with precision -5",
                batch([RowChange(relation: column(.decimal(precision: -5, scale: 2)), kind: .insert, new: [.null])])),
            LabelledBatch(
                "decimal column with precision 2^31",
                batch([
                    RowChange(relation: column(.decimal(precision: 1 << 31, scale: nil)), kind: .insert, new: [.null])
                ])),
            LabelledBatch(
                "date with month 13",
                batch([
                    RowChange(
                        relation: anyValueRelation, kind: .insert,
                        new: [.date(CivilDate(year: 2024, month: 13, day: 1))])
                ])),
            LabelledBatch(
                "timestamp with day 32",
                batch([
                    RowChange(
                        relation: anyValueRelation, kind: .insert,
                        new: [
                            .timestamp(
                                CivilDateTime(
                                    date: CivilDate(year: 2024, month: 1, day: 32), time: TimeOfDay(microseconds: 0)))
                        ])
                ])),
            LabelledBatch(
                "9 empty transactions at the empty MariaDB position",
                Batch(
                    stream: StreamID("s1")!, sequence: 1,
                    transactions: Array(
                        repeating:
                            Transaction(
                                commitPosition: empty, commitTime: Timestamp(microsecondsSinceEpoch: 0), changes: []),
                        count: 9))),
            LabelledBatch(
                "8 empty transactions at the empty MariaDB position (control)",
                Batch(
                    stream: StreamID("s1")!, sequence: 1,
                    transactions: Array(
                        repeating:
                            Transaction(
                                commitPosition: empty, commitTime: Timestamp(microsecondsSinceEpoch: 0), changes: []),
                        count: 8))),
        ]
    }()

    @Test("whatever the encoder accepts decodes back unchanged", arguments: edges)
    func acceptedMeansDecodable(_ labelled: LabelledBatch) {
        for compression in BatchCompression.allCases {
            let encoded: EncodedBatch
            do {
                encoded = try makeEncoder(compression).encode(labelled.batch)
            } catch {
                #expect(
                    { if case .invalidBatch = error { true } else { false } }(),
                    "refused with \(error), expected .invalidBatch")
                continue
            }
            do {
                let decoded = try makeDecoder().decode(encoded.frame)
                #expect(decoded == labelled.batch, "\(compression): the frame decodes to a different batch")
            } catch {
                Issue.record("\(compression): the encoder wrote a frame its decoder refuses: \(error)")
            }
        }
    }
}
