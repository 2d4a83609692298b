import PropertyBased
import SeededRandom
import TandemCodec
import TandemCore
import Testing

@Suite("Batch header")
struct HeaderTests {
    /// Recomputes every header field from the batch, independently of the encoder.
    static func expectHeaderDescribes(
        _ batch: Batch, _ encoded: EncodedBatch, compression: BatchCompression,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let h = encoded.header
        #expect(h.stream == batch.stream, sourceLocation: sourceLocation)
        #expect(h.sequence == batch.sequence, sourceLocation: sourceLocation)
        #expect(h.compression == compression, sourceLocation: sourceLocation)
        #expect(Int(h.transactionCount) == batch.transactions.count, sourceLocation: sourceLocation)
        let rows = batch.transactions.flatMap(\.changes).filter { if case .truncate = $0.kind { false } else { true } }
            .count
        #expect(h.rowCount == UInt64(rows), sourceLocation: sourceLocation)
        #expect(h.firstPosition == batch.transactions.first!.commitPosition, sourceLocation: sourceLocation)
        #expect(h.lastPosition == batch.transactions.last!.commitPosition, sourceLocation: sourceLocation)
        let times = batch.transactions.map(\.commitTime.microsecondsSinceEpoch)
        #expect(h.firstCommitTime.microsecondsSinceEpoch == times.min()!, sourceLocation: sourceLocation)
        #expect(h.lastCommitTime.microsecondsSinceEpoch == times.max()!, sourceLocation: sourceLocation)
        #expect(Int(h.uncompressedSize) == Wire { $0.body(batch) }.bytes.count, sourceLocation: sourceLocation)

        // The fixed prefix and the trailer.
        let f = encoded.frame
        #expect(Array(f.prefix(4)) == Array("TNDB".utf8), sourceLocation: sourceLocation)
        #expect(f[4] == 1 && f[5] == 0, "version", sourceLocation: sourceLocation)
        #expect(f[6] == compression.rawValue && f[7] == 0, sourceLocation: sourceLocation)
        let headerLength = Int(f.le32(at: 8)), bodyLength = Int(f.le32(at: 12))
        #expect(16 + headerLength + bodyLength + 4 == f.count, sourceLocation: sourceLocation)
        #expect(f.le32(at: f.count - 4) == crc32cReference(Array(f.dropLast(4))), sourceLocation: sourceLocation)
        if compression == .none { #expect(bodyLength == Int(h.uncompressedSize), sourceLocation: sourceLocation) }
    }

    @Test("header fields describe the batch", .shrinking, arguments: CodecConfig.all)
    func headerMatchesBatch(config: CodecConfig) async {
        let encoder = makeEncoder(config.compression, level: config.level)
        let decoder = makeDecoder()
        await propertyCheck(count: 150, input: Gen.batch) { batch in
            let encoded = try encoder.encode(batch)
            Self.expectHeaderDescribes(batch, encoded, compression: config.compression)
            #expect(try decoder.decodeHeader(encoded.frame) == encoded.header)
        }
    }

    @Test("a hand-checked header: out-of-order commit times, truncates not counted as rows")
    func handChecked() throws {
        let relation = Relation(
            name: RelationName(schema: "s", name: "t"),
            columns: [Column(name: "k", type: .integer(bits: 32, signed: true), nativeType: "int4", isKey: true)])
        let first = Position.mariadb(try MariaDBGTIDList(parsing: "0-1-10,1-2-3"))
        let last = Position.mariadb(try MariaDBGTIDList(parsing: "0-1-12,1-2-3"))
        let batch = Batch(
            stream: StreamID("s1")!, sequence: 42,
            transactions: [
                Transaction(
                    commitPosition: first, commitTime: Timestamp(microsecondsSinceEpoch: 500),
                    changes: [
                        RowChange(relation: relation, kind: .insert, new: [.int(1)]),
                        RowChange(relation: relation, kind: .truncate(cascade: false, restartIdentity: false)),
                    ]),
                Transaction(
                    commitPosition: .mariadb(try MariaDBGTIDList(parsing: "0-1-11,1-2-3")),
                    commitTime: Timestamp(microsecondsSinceEpoch: -7), changes: []),
                Transaction(
                    commitPosition: last, commitTime: Timestamp(microsecondsSinceEpoch: 300),
                    changes: [
                        RowChange(relation: relation, kind: .update, old: [.int(1)], new: [.int(2)]),
                        RowChange(relation: relation, kind: .delete, old: [.int(2)]),
                    ]),
            ])
        for config in CodecConfig.all {
            let encoded = try makeEncoder(config.compression, level: config.level).encode(batch)
            let expected = BatchHeader(
                stream: StreamID("s1")!, sequence: 42, firstPosition: first, lastPosition: last,
                firstCommitTime: Timestamp(microsecondsSinceEpoch: -7),
                lastCommitTime: Timestamp(microsecondsSinceEpoch: 500),
                transactionCount: 3, rowCount: 3, uncompressedSize: UInt32(Wire { $0.body(batch) }.bytes.count),
                compression: config.compression)
            #expect(encoded.header == expected)
            #expect(try makeDecoder().decodeHeader(encoded.frame) == expected)
        }
    }

    @Test("decodeHeader does not need the body to be decodable")
    func headerWithoutBody() throws {
        var rng = SplitMix64(seed: 3)
        let batch = Arb.batch(&rng)
        let encoded = try makeEncoder(.zstd).encode(batch)
        var parts = FrameParts(encoded.frame)
        for i in parts.body.indices.dropFirst(4) { parts.body[i] = 0 }  // keep zstd magic, wreck the rest
        let frame = assembleFrame(header: parts.header, body: parts.body, compression: 1)
        #expect(try makeDecoder().decodeHeader(frame) == encoded.header)
        #expect(decodeFailure(frame, makeDecoder()) != nil)
    }
}
