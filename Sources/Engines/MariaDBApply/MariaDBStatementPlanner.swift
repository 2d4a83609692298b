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
    var table: RelationName
    var verb: RowPlan.Verb
    /// INSERT columns or UPDATE SET columns, paired with `values`.
    var assigned: [String]
    var values: [MariaDBLiteral]
    /// The WHERE conditions (update, delete, check).
    var matches: [RowMatch]
    /// `LIMIT 1`: for relations without a real key, where several identical rows may exist and
    /// exactly one must change.
    var limitOne: Bool
    /// What the statement must report (one row changed or matched, or found by a check).
    var expectation: StatementExpectation
}

/// Turns row changes into MariaDB statements: the shared `RowPlan` (which columns to write, how
/// to find the row) as literals in MariaDB's SQL. Pure, apart from the string escaping it is
/// handed through `SQLWriter`.
///
/// MariaDB's own rules on top of the shared ones:
/// - columns the DR server generates (`GENERATED ALWAYS AS …`, system-versioning periods) are
///   never written: MariaDB computes them, and refuses explicit values in strict mode;
/// - an UPDATE sets every sent column to its new value, also those equal to the old image's
///   (`RowPlan.UpdatedColumns.everySent`), so a row that has drifted in a column the source did
///   not change is corrected; a locating column is set only when its value changes (a key
///   update);
/// - an UPDATE is checked by the rows it matched: MariaDB's affected count leaves out a row
///   that already held the values.
enum MariaDBStatementPlanner: StatementDialect {
    typealias PlanError = RowPlanError

    static var engine: DatabaseEngine { .mariadb }

    /// - Parameter generated: the DR table's generated columns, lower-cased (MariaDB column
    ///   names are case-insensitive).
    static func plan(_ change: RowChange, generated: Set<String> = []) throws(PlanError) -> PlannedRow {
        let columns = change.relation.columns
        let plan = try RowPlan(change, updates: .everySent) { index in
            generated.isEmpty || !generated.contains(columns[index].name.lowercased())
        }
        var row = PlannedRow(
            table: change.relation.name, verb: plan.verb, assigned: [], values: [], matches: [],
            limitOne: plan.locator?.oneRow ?? false, expectation: plan.expectation(updatesCountChangedRows: true))
        for index in plan.assigned {
            row.assigned.append(columns[index].name)
            row.values.append(try literal(plan.new[index], columns[index]))
        }
        if let locator = plan.locator, plan.verb != .copy {
            for index in locator.indices {
                let value = locator.image[index]
                row.matches.append(
                    RowMatch(
                        column: columns[index].name, value: value == .null ? nil : try literal(value, columns[index])))
            }
        }
        return row
    }

    private static func literal(_ value: Value, _ column: Column) throws(PlanError) -> MariaDBLiteral {
        do {
            return try MariaDBValueText.literal(value)
        } catch {
            throw PlanError("column \(column.name): \(error.reason)")
        }
    }

    // MARK: SQL text

    /// `INSERT INTO t (a, b) VALUES (…), (…)`: one statement for a run of rows with the same
    /// columns. `INSERT INTO t () VALUES ()` when no column is sent (every column defaulted).
    /// With `upsert` (rows of the initial copy), each row is written over what its key finds:
    /// `ON DUPLICATE KEY UPDATE` every column.
    static func writeInsert(
        _ table: RelationName, columns: [String], rows: [[MariaDBLiteral]], upsert: Bool = false,
        into sql: inout SQLWriter
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
        guard upsert else { return }
        sql.raw(" ON DUPLICATE KEY UPDATE ")
        for (index, column) in columns.enumerated() {
            if index > 0 { sql.raw(", ") }
            sql.identifier(column)
            sql.raw(" = VALUES(")
            sql.identifier(column)
            sql.raw(")")
        }
    }

    /// UPDATE, DELETE or the existence check of one planned row (not inserts).
    static func writeRow(_ row: PlannedRow, into sql: inout SQLWriter) throws(ApplyError) {
        switch row.verb {
        case .insert, .copy:
            // A copied row is the row as the source had it: written over what its key finds.
            try writeInsert(
                row.table, columns: row.assigned, rows: [row.values], upsert: row.verb == .copy, into: &sql)
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

    /// The row's identity for an error message (see `RowIdentity`), values as MariaDB
    /// literals. An insert is named by its key, or by its sent columns where it has none.
    static func keyDescription(_ change: RowChange) -> String? {
        let columns = change.relation.columns
        var pairs = change.kind == .insert ? nil : RowIdentity.locatingColumns(change)
        pairs = pairs ?? RowIdentity.keyColumns(change)
        if pairs == nil, !change.isTruncate, let new = change.new, new.count == columns.count {
            pairs = columns.indices.filter { !new[$0].isUnchanged }.map { (columns[$0].name, new[$0]) }
        }
        return RowIdentity.text(pairs) { (try? MariaDBValueText.literal($0))?.display() ?? "(no MariaDB form)" }
    }
}
