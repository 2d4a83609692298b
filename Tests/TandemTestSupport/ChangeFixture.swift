import ApplyKit
import TandemAgent
import TandemCodec
import TandemCore

/// The suite's one engine-neutral change and batch fixture: relations, row changes, key images
/// and batch frames exactly as a capture produces them, encoded by the real codec. An engine's
/// tests adopt it with their stream, default schema and native integer type, and add only what
/// is engine-specific (positions, transactions with their origins, the sink).
public protocol ChangeFixture {
    static var stream: StreamID { get }
    /// The schema `relation` uses when none is given ("public", "app").
    static var defaultSchema: String { get }
    /// The native type `column` gives an integer column when none is given ("int8", "bigint").
    static var nativeInteger: String { get }
}

extension ChangeFixture {
    public static func column(
        _ name: String, _ type: LogicalType = .integer(bits: 64, signed: true), native: String? = nil, key: Bool = false
    ) -> Column {
        Column(name: name, type: type, nativeType: native ?? nativeInteger, isKey: key)
    }

    public static func relation(_ name: String, schema: String? = nil, _ columns: [Column]) -> Relation {
        Relation(name: RelationName(schema: schema ?? defaultSchema, name: name), columns: columns)
    }

    public static func insert(_ relation: Relation, _ values: [Value]) -> RowChange {
        RowChange(relation: relation, kind: .insert, new: values)
    }

    public static func update(_ relation: Relation, old: [Value]? = nil, _ new: [Value]) -> RowChange {
        RowChange(relation: relation, kind: .update, old: old, new: new)
    }

    public static func delete(_ relation: Relation, _ old: [Value]) -> RowChange {
        RowChange(relation: relation, kind: .delete, old: old)
    }

    public static func truncate(_ relation: Relation) -> RowChange {
        RowChange(relation: relation, kind: .truncate(cascade: false, restartIdentity: false))
    }

    /// An old image holding only the key columns, everything else not sent (PostgreSQL's 'K').
    public static func keyImage(_ relation: Relation, _ key: [Value]) -> [Value] {
        var image = Array(repeating: Value.unchanged, count: relation.columns.count)
        for (index, value) in zip(relation.keyColumnIndices, key) { image[index] = value }
        return image
    }

    /// The copied-rows scenario both engines' sink tests apply in one transaction to an items
    /// table (id, name, note, qty) that holds ids 1–10: 450 copied rows (ids 1–450, the first
    /// ten written over), id 5 copied a second time inside the chunk, then a delete of 450 and
    /// an insert of 451. Afterwards the table holds `copiedRunCount` rows, and
    /// `copiedRunProbe` of them read as `copiedRunExpected` (id, name, qty).
    public static func copiedRun(_ items: Relation) -> [RowChange] {
        func item(_ id: Int64, _ name: String, _ qty: Int64) -> [Value] { [.int(id), .text(name), .null, .int(qty)] }
        var changes = (1...450).map { id in
            RowChange(relation: items, kind: .copy, new: item(Int64(id), "copy \(id)", Int64(id)))
        }
        changes.insert(RowChange(relation: items, kind: .copy, new: item(5, "again", 5)), at: 100)
        changes.append(delete(items, keyImage(items, [.int(450)])))
        changes.append(insert(items, item(451, "new", 0)))
        return changes
    }

    public static var copiedRunCount: Int { 450 }
    /// The ids `copiedRunExpected` reads, as an SQL list.
    public static var copiedRunProbe: String { "1, 5, 10, 200, 449, 451" }
    public static var copiedRunExpected: [[String]] {
        [
            ["1", "copy 1", "1"], ["5", "again", "5"], ["10", "copy 10", "10"], ["200", "copy 200", "200"],
            ["449", "copy 449", "449"], ["451", "new", "0"],
        ]
    }

    /// A batch of `transactions` as the sink receives it: numbered, encoded, framed.
    public static func batch(_ sequence: UInt64, _ transactions: [Transaction], stream: StreamID? = nil) throws
        -> SinkBatch
    {
        let encoded = try BatchEncoder().encode(
            Batch(stream: stream ?? Self.stream, sequence: sequence, transactions: transactions))
        return SinkBatch(sequence: sequence, frame: encoded.frame)
    }
}
