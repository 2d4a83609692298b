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

    /// A batch of `transactions` as the sink receives it: numbered, encoded, framed.
    public static func batch(_ sequence: UInt64, _ transactions: [Transaction], stream: StreamID? = nil) throws
        -> SinkBatch
    {
        let encoded = try BatchEncoder().encode(
            Batch(stream: stream ?? Self.stream, sequence: sequence, transactions: transactions))
        return SinkBatch(sequence: sequence, frame: encoded.frame)
    }
}
