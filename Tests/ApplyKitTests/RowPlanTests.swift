import ApplyKit
import TandemCore
import Testing

/// The engine-neutral half of statement planning: which columns a statement writes, how it
/// finds its row, what it must report, and how an error names the row.
@Suite("row plans (pure)")
struct RowPlanTests {
    static func column(_ name: String, key: Bool = false) -> Column {
        Column(name: name, type: .integer(bits: 64, signed: true), nativeType: "bigint", isKey: key)
    }

    /// `items (id key, name, qty)`: a real key.
    static let items = Relation(
        name: RelationName(schema: "app", name: "items"),
        columns: [column("id", key: true), column("name"), column("qty")])
    /// `log (a, b)`: no key at all.
    static let log = Relation(name: RelationName(schema: "app", name: "log"), columns: [column("a"), column("b")])

    @Test("an insert writes every sent column the table takes, in column order")
    func insert() throws {
        let change = RowChange(relation: Self.items, kind: .insert, new: [.int(1), .unchanged, .int(3)])
        let plan = try RowPlan(change, updates: .everySent)
        #expect(plan.verb == .insert)
        #expect(plan.assigned == [0, 2])
        #expect(plan.locator == nil)
        let computed = try RowPlan(change, updates: .everySent) { $0 != 2 }
        #expect(computed.assigned == [0])
    }

    @Test("an update finds the row by its old key and does not set the key it was found by")
    func update() throws {
        let change = RowChange(
            relation: Self.items, kind: .update, old: [.int(1), .text("a"), .unchanged],
            new: [.int(1), .text("a"), .int(5)])
        let every = try RowPlan(change, updates: .everySent)
        #expect(every.verb == .update)
        #expect(every.assigned == [1, 2])
        #expect(every.locator?.image == [.int(1), .text("a"), .unchanged])
        #expect(every.locator?.indices == [0])
        #expect(every.locator?.oneRow == false)
        // `.changed` leaves out the name, which the old image already holds.
        #expect(try RowPlan(change, updates: .changed).assigned == [2])
        // A key update sets the new key.
        let moved = RowChange(
            relation: Self.items, kind: .update, old: [.int(1), .unchanged, .unchanged],
            new: [.int(2), .unchanged, .unchanged])
        #expect(try RowPlan(moved, updates: .changed).assigned == [0])
    }

    @Test("an update with nothing to set still checks that the row exists")
    func check() throws {
        let change = RowChange(
            relation: Self.items, kind: .update, old: [.int(1), .text("a"), .unchanged],
            new: [.int(1), .text("a"), .unchanged])
        let plan = try RowPlan(change, updates: .changed)
        #expect(plan.verb == .check)
        #expect(plan.assigned.isEmpty)
        #expect(plan.expectation(updatesCountChangedRows: true) == .returnedOne)
        #expect(try RowPlan(change, updates: .everySent).verb == .update)
    }

    @Test("a relation without a real key is located by every sent column, one row at a time")
    func keyless() throws {
        let delete = RowChange(relation: Self.log, kind: .delete, old: [.int(1), .unchanged])
        let plan = try RowPlan(delete, updates: .changed)
        #expect(plan.verb == .delete)
        #expect(plan.locator?.indices == [0])
        #expect(plan.locator?.oneRow == true)
    }

    @Test("rows that cannot be located, or images of the wrong width, are refused")
    func refusals() {
        let cases: [(RowChange, String)] = [
            (RowChange(relation: Self.items, kind: .delete, old: [.unchanged, .int(1), .int(2)]), "key column id"),
            (RowChange(relation: Self.log, kind: .delete, old: [.unchanged, .unchanged]), "cannot be located"),
            (RowChange(relation: Self.items, kind: .delete, old: [.int(1)]), "1 values for 3 columns"),
            (RowChange(relation: Self.items, kind: .insert), "no new row image"),
            (RowChange(relation: Self.items, kind: .truncate(cascade: false, restartIdentity: false)), "truncate"),
        ]
        for (change, words) in cases {
            #expect(throws: RowPlanError.self) { try RowPlan(change, updates: .everySent) }
            do {
                _ = try RowPlan(change, updates: .everySent)
            } catch {
                #expect(error.message.contains(words), "\(error.message)")
            }
        }
    }

    @Test("expectations: one row, an update by its matched count where the engine counts changed rows")
    func expectations() throws {
        let delete = try RowPlan(
            RowChange(relation: Self.items, kind: .delete, old: [.int(1), .unchanged, .unchanged]), updates: .changed)
        #expect(delete.expectation(updatesCountChangedRows: true) == .affected(1))
        let update = try RowPlan(
            RowChange(relation: Self.items, kind: .update, old: nil, new: [.int(1), .int(2), .unchanged]),
            updates: .changed)
        #expect(update.expectation(updatesCountChangedRows: false) == .affected(1))
        #expect(update.expectation(updatesCountChangedRows: true) == .matchedOne)
    }

    @Test("an error names the row by its locating columns, shortened to one readable line")
    func identity() {
        let change = RowChange(relation: Self.items, kind: .delete, old: [.int(7), .unchanged, .unchanged])
        #expect(RowIdentity.text(RowIdentity.locatingColumns(change)) { "\($0)" } == "(id=\(Value.int(7)))")
        let keyless = RowChange(relation: Self.log, kind: .delete, old: [.unchanged, .unchanged])
        #expect(RowIdentity.locatingColumns(keyless) == nil)
        #expect(RowIdentity.keyColumns(keyless) == nil)
        let unsent = RowChange(relation: Self.items, kind: .delete, old: [.unchanged, .unchanged, .unchanged])
        #expect(RowIdentity.text(RowIdentity.keyColumns(unsent)) { _ in "x" } == "(id=(not sent))")
        let long = RowIdentity.text([("k", .int(1))]) { _ in String(repeating: "v", count: 500) } ?? ""
        #expect(long.count == 203)
        #expect(long.hasSuffix("…)"))
    }
}

@Suite("checkpoint row and statement contexts")
struct CheckpointRowTests {
    final class Session: TargetSession {
        var engine: DatabaseEngine { .mariadb }
        var isConnected: Bool { true }
        func connect() throws(ApplyError) -> String { "" }
        func readCheckpoint(inTransaction: Bool) throws(ApplyError) -> SinkCheckpoint { .empty }
        func begin() throws(ApplyError) {}
        func savepoint(_ step: SavepointStep, _ context: StatementContext) throws(ApplyError) {}
        func apply(_ changes: [RowChange], _ context: StatementContext) throws(ApplyError) {}
        func flush() throws(ApplyError) {}
        func commit(_ checkpoint: CheckpointRow) throws(ApplyError) {}
        func rollBack() {}
        func close() {}
    }

    @Test("the stored checkpoint reads back; a bad row is a checkpoint error of the session's engine")
    func stored() throws {
        let session = Session()
        #expect(try session.checkpoint(stored: nil) == .empty)
        #expect(try session.checkpoint(stored: ("12", nil)) == SinkCheckpoint(sequence: 12, position: nil))
        let position = try Position(storedText: "mariadb 0-1-42")
        #expect(
            try session.checkpoint(stored: ("3", "mariadb 0-1-42")) == SinkCheckpoint(sequence: 3, position: position))
        for row: (String?, String?) in [(nil, nil), ("x", nil), ("3", "0-1-42")] {
            do {
                _ = try session.checkpoint(stored: row)
                Issue.record("read \(row)")
            } catch {
                #expect(error.kind == .checkpoint)
                #expect(error.engine == .mariadb)
            }
        }
    }

    @Test("a row's statement context names its verb, table and the call's batch and transaction")
    func context() {
        let relation = Relation(name: RelationName(schema: "s", name: "t"), columns: [])
        let call = StatementContext(what: "apply", batch: 4, position: nil)
        for (kind, word) in [(RowChange.Kind.insert, "insert"), (.update, "update"), (.delete, "delete")] {
            let context = StatementContext(applying: RowChange(relation: relation, kind: kind), in: call)
            #expect(context.what == word)
            #expect(context.batch == 4)
            #expect(context.table == relation.name)
            #expect(context.change?.kind == kind)
        }
        #expect(SavepointStep.rollBack.sql == "ROLLBACK TO SAVEPOINT tandem_chunk")
    }
}
