import PropertyBased
import TandemCore
import Testing

@Suite("Change model")
struct ChangeModelTests {
    let relation = Relation(
        name: RelationName(schema: "public", name: "t"),
        columns: [
            Column(
                name: "a", type: .integer(bits: 32, signed: true), nativeType: "integer", isKey: true, isNullable: false
            ),
            Column(name: "b", type: .text, nativeType: "text"),
            Column(
                name: "c", type: .integer(bits: 32, signed: true), nativeType: "integer", isKey: true, isNullable: false
            ),
        ])

    @Test func keyComesFromOldImageForUpdatesAndDeletes() {
        let update = RowChange(
            relation: relation, kind: .update, old: [.int(1), .unchanged, .int(2)], new: [.int(3), .text("x"), .int(4)])
        #expect(update.key == [.int(1), .int(2)])
        let updateWithoutOld = RowChange(relation: relation, kind: .update, new: [.int(3), .text("x"), .int(4)])
        #expect(updateWithoutOld.key == [.int(3), .int(4)])
        let delete = RowChange(relation: relation, kind: .delete, old: [.int(5), .null, .int(6)])
        #expect(delete.key == [.int(5), .int(6)])
        #expect(RowChange(relation: relation, kind: .truncate(cascade: false, restartIdentity: false)).key == nil)
    }

    @Test func relationsWithoutKeyAreDetected() {
        #expect(relation.hasKey)
        #expect(relation.keyColumnIndices == [0, 2])
        let noKey = Relation(
            name: RelationName(schema: "public", name: "log"),
            columns: [Column(name: "line", type: .text, nativeType: "text")])
        #expect(!noKey.hasKey)
    }

    @Test func floatsCompareByBitPattern() {
        #expect(Value.float64(.nan) == .float64(.nan))
        #expect(Value.float64(0.0) != .float64(-0.0))
        #expect(Set([Value.float32(.nan), .float32(.nan)]).count == 1)
    }

    @Test func unchangedIsNotNull() {
        #expect(Value.unchanged != .null)
        #expect(Value.unchanged.isUnchanged)
        #expect(!Value.null.isUnchanged)
    }

    @Test(
        "exact decimals accept numeric text only",
        arguments: [
            ("123", true), ("-0.5", true), ("+7.", true), (".5", true), ("NaN", true), ("-Infinity", true),
            ("1234567890123456789012345678901234567890.123456789", true),
            ("", false), ("-", false), (".", false), ("1e5", false), ("1.2.3", false), ("12a", false), (" 1", false),
        ])
    func exactDecimal(text: String, valid: Bool) {
        #expect((ExactDecimal(text) != nil) == valid)
    }

    @Test func uuidRoundTrips() async {
        await propertyCheck(input: Gen.uint64(), Gen.uint64()) { high, low in
            let uuid = UUIDBytes(high: high, low: low)
            #expect(UUIDBytes(parsing: uuid.description) == uuid)
            #expect(UUIDBytes(parsing: uuid.description.uppercased()) == uuid)
        }
        #expect(UUIDBytes(parsing: "not-a-uuid") == nil)
        #expect(UUIDBytes(parsing: "123e4567e89b12d3a456426614174000abcd") == nil)
    }

    @Test func bitStringsRejectDirtyPadding() {
        #expect(BitString(count: 3, bytes: [0b1010_0000]) != nil)
        #expect(BitString(count: 3, bytes: [0b1010_0001]) == nil)
        #expect(BitString(count: 9, bytes: [0xFF]) == nil)
        #expect(BitString(count: 0, bytes: []) != nil)
    }

    @Test func timestampConvertsToUTCCalendar() {
        #expect(Timestamp(microsecondsSinceEpoch: 0).utc.description == "1970-01-01 00:00:00")
        #expect(Timestamp(microsecondsSinceEpoch: 951_782_400_000_001).utc.description == "2000-02-29 00:00:00.000001")
        #expect(Timestamp(microsecondsSinceEpoch: -1).utc.description == "1969-12-31 23:59:59.999999")
        #expect(TimeOfDay(hours: 838, minutes: 59, seconds: 59, negative: true).description == "-838:59:59")
    }

    @Test func transactionCountsRows() {
        let tx = Transaction(
            commitPosition: .postgresql(LSN(1)), commitTime: Timestamp(microsecondsSinceEpoch: 1),
            changes: [
                RowChange(relation: relation, kind: .insert, new: [.int(1), .null, .int(2)]),
                RowChange(relation: relation, kind: .truncate(cascade: true, restartIdentity: false)),
            ])
        #expect(tx.rowCount == 1)
        #expect(tx.chunk == .whole)
    }

    @Test func streamIDsAreRestricted() {
        #expect(StreamID("acme-dr.idc_to_cloud") != nil)
        #expect(StreamID("") == nil)
        #expect(StreamID("a b") == nil)
        #expect(StreamID("x'; drop table t; --") == nil)
        #expect(StreamID(String(repeating: "a", count: 65)) == nil)
    }
}
