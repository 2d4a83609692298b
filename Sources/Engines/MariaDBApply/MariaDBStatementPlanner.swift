import ApplyKit
import TandemCore

/// One condition that locates the target row: `column = literal`, or `column IS NULL` when the
/// value is nil.
struct RowMatch: Hashable {
    var column: String
    var value: MariaDBLiteral?
}

/// A statement for one row change, as literals: what to write and how to find the row.
struct PlannedRow: Hashable {
    enum Verb: Hashable {
        case insert, update, delete
        /// An update with nothing to write (no column sent beyond the values that locate the
        /// row): still checked, because a missing row means the DR copy has diverged.
        case check
    }

    var table: RelationName
    var verb: Verb
    /// INSERT columns or UPDATE SET columns, paired with `values`.
    var assigned: [String]
    var values: [MariaDBLiteral]
    /// The WHERE conditions (update, delete, check).
    var matches: [RowMatch]
    /// `LIMIT 1`: for relations without a real key, where several identical rows may exist and
    /// exactly one must change.
    var limitOne: Bool
}

/// Turns row changes into MariaDB statements. Pure, apart from the string escaping it is handed
/// through `SQLWriter`.
///
/// The rules that make the DR copy exact:
/// - columns are named, never positional, so the DR table may order them differently;
/// - `.unchanged` columns are never written and never used to locate a row;
/// - columns the DR server generates (`GENERATED ALWAYS AS …`, system-versioning periods) are
///   never written: MariaDB computes them, and refuses explicit values in strict mode;
/// - an UPDATE finds the row by its old key (the key before a key update) and sets every other
///   sent column to its new value, also those equal to the old image's, so a row that has
///   drifted in a column the source did not change is corrected; a locating column is set only
///   when its value changes (a key update). With nothing left to set, the row's existence is
///   still checked;
/// - a relation whose key covers every column, or that has none, is located by every sent column
///   of its old image, and `LIMIT 1` changes exactly one of several identical rows.
enum MariaDBStatementPlanner {
    struct PlanError: Error {
        var message: String
    }

    /// - Parameter generated: the DR table's generated columns, lower-cased (MariaDB column
    ///   names are case-insensitive).
    static func plan(_ change: RowChange, generated: Set<String> = []) throws(PlanError) -> PlannedRow {
        let relation = change.relation
        let columns = relation.columns
        var row = PlannedRow(
            table: relation.name, verb: .insert, assigned: [], values: [], matches: [], limitOne: false)
        func isGenerated(_ index: Int) -> Bool {
            !generated.isEmpty && generated.contains(columns[index].name.lowercased())
        }
        switch change.kind {
        case .truncate:
            throw PlanError(message: "a truncate is not a row statement")
        case .insert:
            let new = try image(change.new, "new", columns.count)
            for index in columns.indices where !new[index].isUnchanged && !isGenerated(index) {
                row.assigned.append(columns[index].name)
                row.values.append(try literal(new[index], columns[index]))
            }
            return row
        case .update, .delete:
            let locator = try locate(change)
            row.limitOne = locator.oneRow
            if change.kind == .update {
                row.verb = .update
                let new = try image(change.new, "new", columns.count)
                let located = Set(locator.indices)
                for index in columns.indices where !new[index].isUnchanged && !isGenerated(index) {
                    // The row is found by this very value: writing it again changes nothing.
                    if located.contains(index) && locator.image[index] == new[index] { continue }
                    row.assigned.append(columns[index].name)
                    row.values.append(try literal(new[index], columns[index]))
                }
                if row.assigned.isEmpty { row.verb = .check }
            } else {
                row.verb = .delete
            }
            for index in locator.indices {
                let value = locator.image[index]
                if case .null = value {
                    row.matches.append(RowMatch(column: columns[index].name, value: nil))
                } else {
                    row.matches.append(RowMatch(column: columns[index].name, value: try literal(value, columns[index])))
                }
            }
            return row
        }
    }

    /// Which image and which of its columns find the row; `oneRow` when that is not a real key.
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

    private static func image(_ values: [Value]?, _ which: String, _ count: Int) throws(PlanError) -> [Value] {
        guard let values else { throw PlanError(message: "the change carries no \(which) row image") }
        guard values.count == count else {
            throw PlanError(message: "the \(which) row image has \(values.count) values for \(count) columns")
        }
        return values
    }

    private static func literal(_ value: Value, _ column: Column) throws(PlanError) -> MariaDBLiteral {
        do {
            return try MariaDBValueText.literal(value)
        } catch {
            throw PlanError(message: "column \(column.name): \(error.reason)")
        }
    }

    // MARK: SQL text

    /// `INSERT INTO t (a, b) VALUES (…), (…)`: one statement for a run of rows with the same
    /// columns. `INSERT INTO t () VALUES ()` when no column is sent (every column defaulted).
    static func writeInsert(
        _ table: RelationName, columns: [String], rows: [[MariaDBLiteral]], into sql: inout SQLWriter
    ) throws(ApplyError) {
        sql.raw("INSERT INTO ")
        sql.table(table)
        sql.raw(" (")
        for (index, column) in columns.enumerated() {
            if index > 0 { sql.raw(", ") }
            sql.identifier(column)
        }
        sql.raw(") VALUES ")
        for (rowIndex, row) in rows.enumerated() {
            sql.raw(rowIndex == 0 ? "(" : ", (")
            for (index, value) in row.enumerated() {
                if index > 0 { sql.raw(", ") }
                try sql.literal(value)
            }
            sql.raw(")")
        }
    }

    /// UPDATE, DELETE or the existence check of one planned row (not inserts).
    static func writeRow(_ row: PlannedRow, into sql: inout SQLWriter) throws(ApplyError) {
        switch row.verb {
        case .insert:
            try writeInsert(row.table, columns: row.assigned, rows: [row.values], into: &sql)
            return
        case .update:
            sql.raw("UPDATE ")
            sql.table(row.table)
            sql.raw(" SET ")
            for index in row.assigned.indices {
                if index > 0 { sql.raw(", ") }
                sql.identifier(row.assigned[index])
                sql.raw(" = ")
                try sql.literal(row.values[index])
            }
        case .delete:
            sql.raw("DELETE FROM ")
            sql.table(row.table)
        case .check:
            sql.raw("SELECT 1 FROM ")
            sql.table(row.table)
        }
        sql.raw(" WHERE ")
        for (index, match) in row.matches.enumerated() {
            if index > 0 { sql.raw(" AND ") }
            sql.identifier(match.column)
            if let value = match.value {
                sql.raw(" = ")
                try sql.literal(value)
            } else {
                sql.raw(" IS NULL")
            }
        }
        if row.limitOne { sql.raw(" LIMIT 1") }
    }

    /// A source TRUNCATE, applied as `DELETE FROM t`: MariaDB's TRUNCATE TABLE is DDL and
    /// commits implicitly, which would commit the target transaction (and everything before it)
    /// without its checkpoint. DELETE stays inside the transaction; it does not reset the
    /// AUTO_INCREMENT counter, which only matters for rows the DR server numbers itself.
    static func writeDeleteAll(_ table: RelationName, into sql: inout SQLWriter) {
        sql.raw("DELETE FROM ")
        sql.table(table)
    }

    /// The row's identity for an error message: `(id=42, name='Ann')`, each value and the whole
    /// shortened, so one line stays readable even for a key of long texts.
    static func keyDescription(_ change: RowChange) -> String? {
        let columns = change.relation.columns
        let pairs: [(String, Value)]
        switch change.kind {
        case .truncate: return nil
        case .insert, .update, .delete:
            if change.kind != .insert, let located = try? locate(change) {
                pairs = located.indices.map { (columns[$0].name, located.image[$0]) }
            } else if let key = change.key, !key.isEmpty {
                pairs = zip(change.relation.keyColumnIndices, key).map { (columns[$0.0].name, $0.1) }
            } else if let new = change.new, new.count == columns.count {
                pairs = columns.indices.filter { !new[$0].isUnchanged }.map { (columns[$0].name, new[$0]) }
            } else {
                return nil
            }
        }
        guard !pairs.isEmpty else { return nil }
        var parts: [String] = []
        for (name, value) in pairs {
            let shown: String
            switch value {
            case .unchanged: shown = "(not sent)"
            default: shown = (try? MariaDBValueText.literal(value))?.display() ?? "(no MariaDB form)"
            }
            parts.append(name + "=" + shown)
        }
        let text = parts.joined(separator: ", ")
        return "(" + (text.count <= 200 ? text : String(text.prefix(200)) + "…") + ")"
    }
}
