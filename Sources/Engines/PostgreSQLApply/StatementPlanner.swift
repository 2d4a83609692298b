import ApplyKit
import PGClient
import TandemCore

/// One condition that locates the target row.
struct RowMatch: Hashable {
    enum Test: Hashable {
        /// `column = $n`
        case equal
        /// `column IS NULL` (no parameter): together with `equal` this gives
        /// `IS NOT DISTINCT FROM` semantics while still letting the planner use an index.
        case isNull
        /// `column::jsonb = $n::jsonb`: `json` has no equality operator; compared as JSON
        /// values, which is also right for `jsonb`.
        case equalAsJSON
        /// `column::text = $n::text`, for types without an equality operator (xml, geometric
        /// types); the source sent the server's own canonical output, so the texts are equal.
        case equalAsText
    }

    var column: String
    var test: Test
}

/// The shape of a statement: everything its SQL text depends on, and nothing that varies from
/// row to row. Rows with equal shapes share one prepared statement.
struct StatementShape: Hashable {
    var table: RelationName
    var verb: RowPlan.Verb
    /// INSERT columns or UPDATE SET columns, in parameter order.
    var assigned: [String]
    /// WHERE conditions; their parameters follow the assigned ones.
    var matches: [RowMatch]
    /// Locate by `ctid` of the first matching row (`LIMIT 1`): for relations without a real
    /// key, where several identical rows may exist and exactly one must change.
    var locateOneRow: Bool
    /// The DR table is partitioned: no `ONLY` (a partitioned table has no rows of its own),
    /// and a row is named by `(tableoid, ctid)` because a `ctid` is unique per partition only.
    var partitioned: Bool
    /// A copied row: the key columns it is written over by (`ON CONFLICT`), no parameters.
    var conflictKey: [String] = []
    /// Rows in one statement: a run of copied rows of one shape goes out as one multi-row
    /// upsert (`VALUES (…), (…)`), with the parameters of each row after the row before.
    var rows = 1

    var parameterCount: Int { (assigned.count + matches.filter { $0.test != .isNull }.count) * rows }
}

/// A statement for one row change: its shape and its parameters (text form, nil is NULL).
struct PlannedStatement {
    var shape: StatementShape
    var parameters: [String?]
    /// What the statement must report (one row changed, or found by a check).
    var expectation: StatementExpectation
}

/// Turns row changes into PostgreSQL statements with parameters: the shared `RowPlan` (which
/// columns to write, how to find the row) in PostgreSQL's SQL. Pure, apart from the identifier
/// quoting it is handed.
///
/// An UPDATE sets only the columns whose new value is not already known to be in the row
/// (`RowPlan.UpdatedColumns.changed`): the sent columns of an unchanged TOAST value are not
/// rewritten, and rows changed in the same columns share a prepared statement.
enum StatementPlanner: StatementDialect {
    typealias PlanError = RowPlanError

    static var engine: DatabaseEngine { .postgresql }

    /// Types PostgreSQL compares only through their text form (no default equality operator).
    static let textComparedTypes: Set<String> = [
        "xml", "point", "line", "lseg", "box", "path", "polygon", "circle",
    ]
    static let textComparedTypeIDs: Set<UInt32> = [142, 600, 601, 602, 603, 604, 628, 718]

    static func plan(_ change: RowChange, partitioned: Bool) throws(PlanError) -> PlannedStatement {
        let plan = try RowPlan(change, updates: .changed)
        let columns = change.relation.columns
        var shape = StatementShape(
            table: change.relation.name, verb: plan.verb, assigned: [], matches: [],
            locateOneRow: plan.locator?.oneRow ?? false, partitioned: partitioned)
        var parameters: [String?] = []
        for index in plan.assigned {
            shape.assigned.append(columns[index].name)
            parameters.append(try text(plan.new[index], columns[index]))
        }
        if plan.verb == .copy, let locator = plan.locator {
            shape.conflictKey = locator.indices.map { columns[$0].name }
        } else if let locator = plan.locator {
            for index in locator.indices {
                let column = columns[index]
                let value = locator.image[index]
                if case .null = value {
                    shape.matches.append(RowMatch(column: column.name, test: .isNull))
                    continue
                }
                shape.matches.append(RowMatch(column: column.name, test: test(for: column)))
                parameters.append(try text(value, column))
            }
        }
        // PostgreSQL counts the rows an UPDATE matched, changed or not.
        return PlannedStatement(
            shape: shape, parameters: parameters, expectation: plan.expectation(updatesCountChangedRows: false))
    }

    static func test(for column: Column) -> RowMatch.Test {
        let native = column.nativeType.lowercased()
        if case .json = column.type { return native == "jsonb" ? .equal : .equalAsJSON }
        if textComparedTypeIDs.contains(column.nativeTypeID) || textComparedTypes.contains(native) {
            return .equalAsText
        }
        return .equal
    }

    private static func text(_ value: Value, _ column: Column) throws(PlanError) -> String? {
        do {
            return try PostgreSQLValueText.parameter(value)
        } catch {
            throw PlanError("column \(column.name): \(error.reason)")
        }
    }

    // MARK: SQL text

    /// `"schema"."name"`.
    static func qualified(_ table: RelationName, quote: (String) throws(PGError) -> String) throws(PGError) -> String {
        try quote(table.schema) + "." + quote(table.name)
    }

    static func sql(for shape: StatementShape, quote: (String) throws(PGError) -> String) throws(PGError) -> String {
        let table = try qualified(shape.table, quote: quote)
        let scope = shape.partitioned ? table : "ONLY " + table
        var number = 0
        func next() -> String {
            number += 1
            return "$\(number)"
        }
        if shape.verb == .insert || shape.verb == .copy {
            guard !shape.assigned.isEmpty else { return "INSERT INTO \(table) DEFAULT VALUES" }
            var names: [String] = []
            for column in shape.assigned { names.append(try quote(column)) }
            let groups = (0..<max(1, shape.rows)).map { _ in
                "(" + names.map { _ in next() }.joined(separator: ", ") + ")"
            }
            // OVERRIDING SYSTEM VALUE: a GENERATED ALWAYS identity column takes the source's
            // value, as in native logical replication; without identity columns it is a no-op.
            let insert =
                "INSERT INTO \(table) (\(names.joined(separator: ", "))) OVERRIDING SYSTEM VALUE VALUES "
                + groups.joined(separator: ", ")
            guard shape.verb == .copy else { return insert }
            // A copied row is the row as the source had it: written over what the key finds.
            var key: [String] = []
            for column in shape.conflictKey { key.append(try quote(column)) }
            let others = zip(shape.assigned, names).filter { !shape.conflictKey.contains($0.0) }.map {
                "\($0.1) = EXCLUDED.\($0.1)"
            }
            return insert + " ON CONFLICT (\(key.joined(separator: ", "))) DO "
                + (others.isEmpty ? "NOTHING" : "UPDATE SET " + others.joined(separator: ", "))
        }
        var assignments: [String] = []
        for column in shape.assigned { assignments.append(try quote(column) + " = " + next()) }
        var conditions: [String] = []
        for match in shape.matches {
            let column = try quote(match.column)
            switch match.test {
            case .equal: conditions.append(column + " = " + next())
            case .isNull: conditions.append(column + " IS NULL")
            case .equalAsJSON: conditions.append(column + "::jsonb = " + next() + "::jsonb")
            case .equalAsText: conditions.append(column + "::text = " + next() + "::text")
            }
        }
        let condition = conditions.joined(separator: " AND ")
        let rowFilter: String
        if shape.locateOneRow {
            rowFilter =
                shape.partitioned
                ? "(tableoid, ctid) = (SELECT tableoid, ctid FROM \(scope) WHERE \(condition) LIMIT 1)"
                : "ctid = (SELECT ctid FROM \(scope) WHERE \(condition) LIMIT 1)"
        } else {
            rowFilter = condition
        }
        switch shape.verb {
        case .insert, .copy: fatalError("handled above")
        case .update: return "UPDATE \(scope) SET \(assignments.joined(separator: ", ")) WHERE \(rowFilter)"
        case .delete: return "DELETE FROM \(scope) WHERE \(rowFilter)"
        case .check:
            return "SELECT 1 FROM \(scope) WHERE \(condition)" + (shape.locateOneRow ? " LIMIT 1" : "")
        }
    }

    /// `COPY t (a, b) FROM STDIN` for a run of copied rows of `shape` (text format). COPY
    /// writes a `GENERATED ALWAYS` identity column's given value, as `OVERRIDING SYSTEM VALUE`
    /// does for the INSERT, and routes rows of a partitioned table to its partitions.
    static func copySQL(for shape: StatementShape, quote: (String) throws(PGError) -> String) throws(PGError)
        -> String
    {
        var names: [String] = []
        for column in shape.assigned { names.append(try quote(column)) }
        return "COPY " + (try qualified(shape.table, quote: quote)) + " (" + names.joined(separator: ", ")
            + ") FROM STDIN"
    }

    /// Rows of text parameters (`columns` per row) as COPY text-format input: the same text the
    /// column's input function reads for a parameter, with `\N` for NULL and backslash,
    /// tab, newline and carriage return escaped; so `\.` never starts a line.
    static func copyText(_ parameters: [String?], columns: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(parameters.reduce(0) { $0 + ($1?.utf8.count ?? 2) + 1 })
        for (index, parameter) in parameters.enumerated() {
            if var parameter {
                parameter.withUTF8 { bytes in
                    // Most values hold none of the four bytes COPY escapes: copied whole.
                    guard bytes.contains(where: { $0 == 0x5C || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }) else {
                        out.append(contentsOf: bytes)
                        return
                    }
                    for byte in bytes {
                        let escaped: UInt8
                        switch byte {
                        case 0x5C: escaped = 0x5C  // backslash
                        case 0x09: escaped = UInt8(ascii: "t")
                        case 0x0A: escaped = UInt8(ascii: "n")
                        case 0x0D: escaped = UInt8(ascii: "r")
                        default:
                            out.append(byte)
                            continue
                        }
                        out.append(0x5C)
                        out.append(escaped)
                    }
                }
            } else {
                out.append(UInt8(ascii: "\\"))
                out.append(UInt8(ascii: "N"))
            }
            out.append((index + 1) % columns == 0 ? UInt8(ascii: "\n") : UInt8(ascii: "\t"))
        }
        return out
    }

    /// `TRUNCATE ONLY a, ONLY b [RESTART IDENTITY] [CASCADE]`: the relations one source
    /// TRUNCATE named go into one statement, because tables referencing each other by foreign
    /// keys can only be truncated together.
    static func truncateSQL(
        _ tables: [(name: RelationName, partitioned: Bool)], cascade: Bool, restartIdentity: Bool,
        quote: (String) throws(PGError) -> String
    ) throws(PGError) -> String {
        var names: [String] = []
        for table in tables {
            let name = try qualified(table.name, quote: quote)
            // TRUNCATE ONLY is refused for a partitioned table; the source truncated its partitions.
            names.append(table.partitioned ? name : "ONLY " + name)
        }
        return "TRUNCATE " + names.joined(separator: ", ") + (restartIdentity ? " RESTART IDENTITY" : "")
            + (cascade ? " CASCADE" : "")
    }

    /// The row's identity for an error message (see `RowIdentity`), each text value quoted
    /// and shortened.
    static func keyDescription(_ change: RowChange) -> String? {
        RowIdentity.text(RowIdentity.locatingColumns(change) ?? RowIdentity.keyColumns(change)) { value in
            if case .null = value { return "NULL" }
            let text = (try? PostgreSQLValueText.parameter(value)) ?? nil
            return text.map { "'" + ($0.count <= 40 ? $0 : String($0.prefix(40)) + "…") + "'" } ?? "NULL"
        }
    }
}
