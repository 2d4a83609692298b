/// Sequence values travel as ordinary inserts into this pseudo-relation, so they need
/// nothing new in the batch format: the capture reads the source's sequences with each
/// heartbeat and adds one row per sequence (schema, name, last value) to the heartbeat's
/// transaction; the sink moves the DR site's sequence of that name forward to at least
/// that value and never back. No table of this name is ever written.
///
/// Why: sequences are not transactional and logical decoding does not carry them, yet
/// after a switchover the new primary must not hand out ids the old one already used.
public enum SequenceValues {
    public static let name = RelationName(schema: "tandem", name: "$sequence_values")

    public static let relation = Relation(
        name: name,
        columns: [
            Column(name: "schema", type: .text, nativeType: "text", isKey: true, isNullable: false),
            Column(name: "name", type: .text, nativeType: "text", isKey: true, isNullable: false),
            Column(name: "last_value", type: .integer(bits: 64, signed: true), nativeType: "bigint", isNullable: false),
        ])

    public static func change(schema: String, name: String, lastValue: Int64) -> RowChange {
        RowChange(relation: relation, kind: .insert, new: [.text(schema), .text(name), .int(lastValue)])
    }

    /// (schema, name, last value) of a change on the pseudo-relation, nil for any other.
    public static func values(of change: RowChange) -> (schema: String, name: String, lastValue: Int64)? {
        guard change.relation.name == name, case .insert = change.kind, let new = change.new, new.count == 3,
            case .text(let schema) = new[0], case .text(let sequence) = new[1], case .int(let value) = new[2]
        else { return nil }
        return (schema, sequence, value)
    }
}
