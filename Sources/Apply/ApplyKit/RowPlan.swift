import TandemCore

/// Why a row change cannot become a statement. Always a defect of what was shipped (a missing
/// image, an unsent key), never a condition to work around: the engine reports it as `.value`.
public struct RowPlanError: Error, Sendable, Equatable {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }
}

/// How the DR database finds the row a change acts on: the image and the columns that locate
/// it, and whether they are only a stand-in for a key.
///
/// A row is located by its old key (the key before a key update moves it). A relation whose key
/// covers every column, or that has none, has no key that tells rows apart: it is located by
/// every sent column of its old image, and exactly one matching row is changed (`oneRow`) even
/// when identical rows exist, so the DR copy keeps as many of them as the source.
public struct RowLocator: Sendable, Hashable {
    /// The row image the locating values come from (the old image, or the new one for an
    /// update whose source sent no old image).
    public var image: [Value]
    /// The locating columns, in column order; never an `.unchanged` one.
    public var indices: [Int]
    /// The columns are not a real key: change one matching row, not all of them.
    public var oneRow: Bool

    public init(_ change: RowChange) throws(RowPlanError) {
        let relation = change.relation
        let keys = relation.keyColumnIndices
        let realKey = !keys.isEmpty && keys.count < relation.columns.count
        let source = change.kind == .delete ? change.old : (change.old ?? change.new)
        let image = try RowPlan.image(source, change.kind == .delete ? "old" : "old or new", relation.columns.count)
        self.image = image
        if realKey {
            if let missing = keys.first(where: { image[$0].isUnchanged }) {
                throw RowPlanError("key column \(relation.columns[missing].name) was not sent")
            }
            indices = keys
            oneRow = false
            return
        }
        indices = relation.columns.indices.filter { !image[$0].isUnchanged }
        guard !indices.isEmpty else {
            throw RowPlanError("the row cannot be located: no column of its old image was sent")
        }
        oneRow = true
    }
}

/// The engine-neutral plan of one row statement: what it does, which columns it writes and
/// which locate the row. Each engine turns it into its own SQL (parameters or literals) and
/// checks the outcome the verb expects; the rules that keep the DR copy exact live here, so
/// both engines follow the same ones:
/// - columns are named, never positional, so the DR table may order them differently;
/// - `.unchanged` columns are never written (an unchanged TOAST value keeps its value) and
///   never used to locate a row;
/// - an UPDATE never sets a locating column to the value that found the row; with nothing
///   left to set it still checks that the row exists, because a missing row means the DR copy
///   has diverged.
public struct RowPlan: Sendable, Hashable {
    public enum Verb: Sendable, Hashable {
        case insert, update, delete
        /// A row of the initial copy: inserted, or written over the row with its key (an
        /// upsert on the key, every column assigned).
        case copy
        /// An update with nothing to set: the row's existence is still checked.
        case check
    }

    /// Which sent columns an UPDATE writes beyond those that changed the row's location.
    public enum UpdatedColumns: Sendable, Hashable {
        /// Every sent column, even one whose old image holds the same value: a DR row that
        /// drifted in a column the source did not change is corrected.
        case everySent
        /// Only those whose new value is not already known to be in the row (the old image
        /// holds it): fewer statement shapes, and nothing written that is already there.
        case changed
    }

    public var verb: Verb
    /// The columns an INSERT or UPDATE writes, in column order, with their values in `new`.
    public var assigned: [Int]
    /// The new image (empty for a delete).
    public var new: [Value]
    /// How the row is found (nil for an insert; for a copy, the key it is written over by).
    public var locator: RowLocator?
    /// The change was made while its table is being copied: its row may not be there yet.
    public var duringCopy: Bool

    /// - Parameters:
    ///   - updates: the engine's choice of columns an UPDATE sets.
    ///   - writable: whether the DR table takes a value for the column at all (false for a
    ///     column the DR server computes itself).
    public init(
        _ change: RowChange, updates: UpdatedColumns, writable: (Int) -> Bool = { _ in true }
    ) throws(RowPlanError) {
        let count = change.relation.columns.count
        duringCopy = change.duringCopy
        switch change.kind {
        case .truncate:
            throw RowPlanError("a truncate is not a row statement")
        case .insert:
            verb = .insert
            new = try Self.image(change.new, "new", count)
            locator = nil
            assigned = new.indices.filter { [new] in !new[$0].isUnchanged && writable($0) }
        case .copy:
            verb = .copy
            new = try Self.image(change.new, "new", count)
            guard !new.contains(where: \.isUnchanged) else {
                throw RowPlanError("a copied row lacks a column's value")
            }
            let locator = try RowLocator(change)
            guard !locator.oneRow else {
                throw RowPlanError("a copied row needs its table's primary key to be written over by")
            }
            self.locator = locator
            assigned = new.indices.filter { writable($0) }
        case .delete:
            verb = .delete
            locator = try RowLocator(change)
            new = []
            assigned = []
        case .update:
            let locator = try RowLocator(change)
            let new = try Self.image(change.new, "new", count)
            let located = Set(locator.indices)
            let old = updates == .changed ? change.old : nil
            assigned = new.indices.filter { index in
                let value = new[index]
                guard !value.isUnchanged, writable(index) else { return false }
                // The row is found by this very value: writing it again changes nothing.
                if located.contains(index) && locator.image[index] == value { return false }
                if let old, index < old.count, !old[index].isUnchanged, old[index] == value { return false }
                return true
            }
            verb = assigned.isEmpty ? .check : .update
            self.locator = locator
            self.new = new
        }
    }

    /// What the statement must report for the DR copy to be known exact: one row inserted,
    /// deleted or updated, or found by the check. `updatesCountChangedRows`: the engine's
    /// affected count of an UPDATE leaves out rows it matched without changing (MariaDB), so
    /// an UPDATE must be checked by its matched count instead.
    public func expectation(updatesCountChangedRows: Bool) -> StatementExpectation {
        switch (verb, duringCopy) {
        case (.insert, _): .affected(1)
        // Inserted (1) or written over (1, or 2 where the engine counts an update as a delete
        // and an insert, 0 where it counts an unchanged row as not affected).
        case (.copy, _): .affectedAtMost(2)
        case (.delete, false): .affected(1)
        case (.update, false): updatesCountChangedRows ? .matchedOne : .affected(1)
        case (.check, false): .returnedOne
        case (.delete, true): .affectedAtMost(1)
        case (.update, true): updatesCountChangedRows ? .matchedAtMostOne : .affectedAtMost(1)
        case (.check, true): .returnedAtMostOne
        }
    }

    /// `values` as a row image of `count` columns: present and of the relation's width.
    static func image(_ values: [Value]?, _ which: String, _ count: Int) throws(RowPlanError) -> [Value] {
        guard let values else { throw RowPlanError("the change carries no \(which) row image") }
        guard values.count == count else {
            throw RowPlanError("the \(which) row image has \(values.count) values for \(count) columns")
        }
        return values
    }
}

/// The row an error is about, as `(id=42, name='Ann')`: what an operator types into a WHERE
/// clause to look at the DR copy. The whole is shortened so that one log line stays readable
/// even for a key of long texts; each engine shows values in its own SQL's form.
public enum RowIdentity {
    /// The columns that locate the row (see `RowLocator`); nil when it cannot be located.
    public static func locatingColumns(_ change: RowChange) -> [(name: String, value: Value)]? {
        guard !change.isTruncate, let located = try? RowLocator(change) else { return nil }
        let columns = change.relation.columns
        return located.indices.map { (columns[$0].name, located.image[$0]) }
    }

    /// The key columns of the row (see `RowChange.key`); nil when the change has none.
    public static func keyColumns(_ change: RowChange) -> [(name: String, value: Value)]? {
        guard let key = change.key, !key.isEmpty else { return nil }
        let columns = change.relation.columns
        return zip(change.relation.keyColumnIndices, key).map { (columns[$0.0].name, $0.1) }
    }

    /// `(name=value, …)`, a column not sent shown as such; nil for no columns.
    public static func text(_ pairs: [(name: String, value: Value)]?, show: (Value) -> String) -> String? {
        guard let pairs, !pairs.isEmpty else { return nil }
        let text = pairs.map { $0.name + "=" + ($0.value.isUnchanged ? "(not sent)" : show($0.value)) }
            .joined(separator: ", ")
        return "(" + (text.count <= 200 ? text : String(text.prefix(200)) + "…") + ")"
    }
}

/// An engine's statement planner, as the errors of its statements need it: the engine, and how
/// it names a row. Every error at a statement goes through here, so the two engines locate
/// their errors alike (batch, transaction, table, key).
public protocol StatementDialect {
    static var engine: DatabaseEngine { get }
    /// The row's key for an error message (see `RowIdentity`).
    static func keyDescription(_ change: RowChange) -> String?
}

extension StatementDialect {
    /// An error found at `context`'s statement. The key is rendered only now: most statements
    /// never fail, and rendering is not free.
    public static func failure(
        _ kind: ApplyError.Kind, _ message: String, _ context: StatementContext, hint: String? = nil
    ) -> ApplyError {
        ApplyError(engine, kind, message, context, key: context.change.flatMap(keyDescription), hint: hint)
    }

    /// `plan`'s result, or, for a row that cannot become a statement, a `.value` error at the
    /// row's statement: what was shipped is at fault, not the DR database.
    public static func planned<Plan>(_ context: StatementContext, _ plan: () throws(RowPlanError) -> Plan)
        throws(ApplyError) -> Plan
    {
        do {
            return try plan()
        } catch {
            throw failure(.value, error.message, context)
        }
    }
}
