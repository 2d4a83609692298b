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
    enum Verb: Hashable {
        case insert, update, delete
        /// An update with nothing to set (every sent column already holds the sent value):
        /// still checked, because a missing row means the DR copy has diverged.
        case check
    }

    var table: RelationName
    var verb: Verb
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

    var parameterCount: Int { assigned.count + matches.filter { $0.test != .isNull }.count }
}

/// A statement for one row change: its shape and its parameters (text form, nil is NULL).
struct PlannedStatement {
    var shape: StatementShape
    var parameters: [String?]
}

/// Turns row changes into statements. Pure, apart from the identifier quoting it is handed.
///
/// The rules that make the DR copy exact:
/// - columns are named, never positional, so the DR table may order them differently;
/// - `.unchanged` columns are never written (an unchanged TOAST value keeps its value) and
///   never used to locate a row;
/// - a row is located by its old key (the key before a key update). A relation whose key
///   covers every column, or that has none, is located by every column of its old image,
///   and exactly one matching row is changed even when identical rows exist;
/// - an UPDATE sets only the columns whose new value is not already known to be in the row.
enum StatementPlanner {
    struct PlanError: Error {
        var message: String
    }

    /// Types PostgreSQL compares only through their text form (no default equality operator).
    static let textComparedTypes: Set<String> = [
        "xml", "point", "line", "lseg", "box", "path", "polygon", "circle",
    ]
    static let textComparedTypeIDs: Set<UInt32> = [142, 600, 601, 602, 603, 604, 628, 718]

    static func plan(_ change: RowChange, partitioned: Bool) throws(PlanError) -> PlannedStatement {
        let relation = change.relation
        let columns = relation.columns
        switch change.kind {
        case .truncate:
            throw PlanError(message: "a truncate is not a row statement")
        case .insert:
            let new = try image(change.new, "new", columns.count)
            var shape = StatementShape(
                table: relation.name, verb: .insert, assigned: [], matches: [], locateOneRow: false,
                partitioned: partitioned)
            var parameters: [String?] = []
            for index in columns.indices where !new[index].isUnchanged {
                shape.assigned.append(columns[index].name)
                parameters.append(try text(new[index], columns[index]))
            }
            return PlannedStatement(shape: shape, parameters: parameters)
        case .update, .delete:
            let isUpdate = change.kind == .update
            let locator = try locate(change)
            var shape = StatementShape(
                table: relation.name, verb: isUpdate ? .update : .delete, assigned: [], matches: [],
                locateOneRow: locator.oneRow, partitioned: partitioned)
            var parameters: [String?] = []
            if isUpdate {
                let new = try image(change.new, "new", columns.count)
                let old = change.old
                let located = Set(locator.indices)
                for index in columns.indices where !new[index].isUnchanged {
                    let value = new[index]
                    // The row was found by this very value, or the old image already holds it.
                    if located.contains(index) && locator.image[index] == value { continue }
                    if let old, index < old.count, !old[index].isUnchanged, old[index] == value { continue }
                    shape.assigned.append(columns[index].name)
                    parameters.append(try text(value, columns[index]))
                }
                if shape.assigned.isEmpty { shape.verb = .check }
            }
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
            return PlannedStatement(shape: shape, parameters: parameters)
        }
    }

    /// Which image and which of its columns find the row.
    static func locate(_ change: RowChange) throws(PlanError) -> (image: [Value], indices: [Int], oneRow: Bool) {
        let relation = change.relation
        let keys = relation.keyColumnIndices
        let realKey = !keys.isEmpty && keys.count < relation.columns.count
        let source = change.kind == .delete ? change.old : (change.old ?? change.new)
        let image = try image(source, change.kind == .delete ? "old" : "old or new", relation.columns.count)
        if realKey {
            if let missing = keys.first(where: { image[$0].isUnchanged }) {
                throw PlanError(message: "key column \(relation.columns[missing].name) was not sent")
            }
            return (image, keys, false)
        }
        let indices = relation.columns.indices.filter { !image[$0].isUnchanged }
        guard !indices.isEmpty else {
            throw PlanError(message: "the row cannot be located: no column of its old image was sent")
        }
        return (image, indices, true)
    }

    static func test(for column: Column) -> RowMatch.Test {
        let native = column.nativeType.lowercased()
        if case .json = column.type { return native == "jsonb" ? .equal : .equalAsJSON }
        if textComparedTypeIDs.contains(column.nativeTypeID) || textComparedTypes.contains(native) {
            return .equalAsText
        }
        return .equal
    }

    private static func image(_ values: [Value]?, _ which: String, _ count: Int) throws(PlanError) -> [Value] {
        guard let values else { throw PlanError(message: "the change carries no \(which) row image") }
        guard values.count == count else {
            throw PlanError(message: "the \(which) row image has \(values.count) values for \(count) columns")
        }
        return values
    }

    private static func text(_ value: Value, _ column: Column) throws(PlanError) -> String? {
        do {
            return try PostgreSQLValueText.parameter(value)
        } catch {
            throw PlanError(message: "column \(column.name): \(error.reason)")
        }
    }

    // MARK: SQL text

    static func sql(for shape: StatementShape, quote: (String) throws(PGError) -> String) throws(PGError) -> String {
        let table = try quote(shape.table.schema) + "." + quote(shape.table.name)
        let scope = shape.partitioned ? table : "ONLY " + table
        var number = 0
        func next() -> String {
            number += 1
            return "$\(number)"
        }
        if shape.verb == .insert {
            guard !shape.assigned.isEmpty else { return "INSERT INTO \(table) DEFAULT VALUES" }
            var names: [String] = []
            for column in shape.assigned { names.append(try quote(column)) }
            let values = names.map { _ in next() }
            // OVERRIDING SYSTEM VALUE: a GENERATED ALWAYS identity column takes the source's
            // value, as in native logical replication; without identity columns it is a no-op.
            return "INSERT INTO \(table) (\(names.joined(separator: ", "))) OVERRIDING SYSTEM VALUE VALUES ("
                + values.joined(separator: ", ") + ")"
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
        case .insert: fatalError("handled above")
        case .update: return "UPDATE \(scope) SET \(assignments.joined(separator: ", ")) WHERE \(rowFilter)"
        case .delete: return "DELETE FROM \(scope) WHERE \(rowFilter)"
        case .check:
            return "SELECT 1 FROM \(scope) WHERE \(condition)" + (shape.locateOneRow ? " LIMIT 1" : "")
        }
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
            let name = try quote(table.name.schema) + "." + quote(table.name.name)
            // TRUNCATE ONLY is refused for a partitioned table; the source truncated its partitions.
            names.append(table.partitioned ? name : "ONLY " + name)
        }
        return "TRUNCATE " + names.joined(separator: ", ") + (restartIdentity ? " RESTART IDENTITY" : "")
            + (cascade ? " CASCADE" : "")
    }

    /// The row's identity for an error message: `(id=42, name='Ann')`, each value and the whole
    /// shortened, so one line stays readable even for a key of long texts.
    static func keyDescription(_ change: RowChange) -> String? {
        let columns = change.relation.columns
        let pairs: [(String, Value)]
        switch change.kind {
        case .truncate: return nil
        case .insert, .update, .delete:
            if let located = try? locate(change) {
                pairs = located.indices.map { (columns[$0].name, located.image[$0]) }
            } else if let key = change.key {
                pairs = zip(change.relation.keyColumnIndices, key).map { (columns[$0.0].name, $0.1) }
            } else {
                return nil
            }
        }
        guard !pairs.isEmpty else { return nil }
        var parts: [String] = []
        for (name, value) in pairs {
            let shown: String
            switch value {
            case .null: shown = "NULL"
            case .unchanged: shown = "(not sent)"
            default:
                let text = (try? PostgreSQLValueText.parameter(value)) ?? nil
                shown = text.map { "'" + shorten($0, 40) + "'" } ?? "NULL"
            }
            parts.append(name + "=" + shown)
        }
        return "(" + shorten(parts.joined(separator: ", "), 200) + ")"
    }

    private static func shorten(_ text: String, _ limit: Int) -> String {
        text.count <= limit ? text : String(text.prefix(limit)) + "…"
    }
}
