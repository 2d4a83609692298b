import TandemCore

/// Where a statement came from, for the error that names it.
public struct StatementContext: Sendable {
    /// What the statement does, in a word or two ("insert", "checkpoint", "savepoint").
    public var what: String
    public var batch: UInt64?
    public var position: Position?
    public var table: RelationName?
    /// The row change it applies, if any (its key is rendered only for an error).
    public var change: RowChange?

    public init(
        what: String, batch: UInt64? = nil, position: Position? = nil, table: RelationName? = nil,
        change: RowChange? = nil
    ) {
        self.what = what
        self.batch = batch
        self.position = position
        self.table = table
        self.change = change
    }
}

/// What a statement must report for apply to go on. Row counts are checked by the applier, not
/// by the server, so a diverged DR copy (a row missing, or there twice) stops apply at the
/// statement that found it rather than being silently written over.
public enum StatementExpectation: Sendable, Hashable {
    case nothing
    /// Exactly this many rows inserted or deleted (a multi-row INSERT expects its row count).
    case affected(UInt64)
    /// An UPDATE that must find exactly one row, changed or not (MariaDB counts matched rows
    /// apart from changed ones).
    case matchedOne
    /// A query that must return exactly one row (a check that a row exists).
    case returnedOne
    /// At most this many rows (a row of the initial copy, inserted or written over; an update
    /// or delete while its table is being copied, whose row may not be there yet).
    case affectedAtMost(UInt64)
    /// An UPDATE while its table is being copied: one matched row, or none yet.
    case matchedAtMostOne
    /// A check while its table is being copied: one row, or none yet.
    case returnedAtMostOne
}

/// What the DR database reported for one statement of a round.
public enum StatementOutcome: Sendable, Hashable {
    /// The statement ran. `matched` is nil where the engine does not report it.
    case done(affected: UInt64, matched: UInt64?, returned: Int)
    /// Not run, because an earlier statement of the round failed (a pipeline's skipped commands).
    case skipped
    /// The server refused it.
    case failed
}

/// One round of statements sent to the DR database together (a PostgreSQL pipeline round, a
/// MariaDB multi-statement packet) and the rule that checks what came back: a pure value, the
/// same for every engine; the engine writes the SQL, sends the round and reports each
/// statement's outcome in order.
///
/// Checking stops at the first problem, which names its statement, so the error says which row
/// failed. A round's statements all belong to one open target transaction: after a problem the
/// driver rolls it back, so nothing after a failed statement is ever committed.
public struct StatementRound<Tag: Sendable>: Sendable {
    public struct Statement: Sendable {
        public var context: StatementContext
        public var expectation: StatementExpectation
        /// Engine data about the statement (MariaDB keeps a multi-row INSERT's rows, to find the
        /// one row the server refuses).
        public var tag: Tag?

        public init(context: StatementContext, expectation: StatementExpectation, tag: Tag? = nil) {
            self.context = context
            self.expectation = expectation
            self.tag = tag
        }
    }

    /// Why a round cannot go on, and at which statement.
    public enum Problem: Sendable {
        /// The server refused statement `index`.
        case refused(index: Int)
        /// Statement `index` reported `count` rows where its expectation wants another number.
        case rowCount(index: Int, count: UInt64)
        /// Statement `index` is an UPDATE whose matched rows the server did not report.
        case matchedUnknown(index: Int)
        /// The server reported `outcomes` outcomes for the round's `statements` statements.
        case outcomeCount(outcomes: Int, statements: Int)
    }

    public private(set) var statements: [Statement] = []

    public init() {}

    public var isEmpty: Bool { statements.isEmpty }
    public var count: Int { statements.count }

    public mutating func add(
        _ context: StatementContext, _ expectation: StatementExpectation = .nothing, tag: Tag? = nil
    ) {
        statements.append(Statement(context: context, expectation: expectation, tag: tag))
    }

    /// Empties the round (sent, or abandoned) and returns what it held.
    public mutating func take() -> [Statement] {
        defer { statements.removeAll(keepingCapacity: true) }
        return statements
    }

    /// The first problem in the outcomes of `statements`, in order; nil when every statement ran
    /// as expected. A refusal after outcomes that were all as expected is the refusal; skipped
    /// statements after a refusal are the refusal's consequence, not a problem of their own.
    public static func check(_ outcomes: [StatementOutcome], of statements: [Statement]) -> Problem? {
        for (index, outcome) in outcomes.enumerated() {
            guard index < statements.count else {
                return .outcomeCount(outcomes: outcomes.count, statements: statements.count)
            }
            switch outcome {
            case .failed:
                return .refused(index: index)
            case .skipped:
                return .outcomeCount(outcomes: index, statements: statements.count)
            case .done(let affected, let matched, let returned):
                switch statements[index].expectation {
                case .nothing:
                    continue
                case .affected(let expected):
                    if affected != expected { return .rowCount(index: index, count: affected) }
                case .matchedOne:
                    guard let matched else { return .matchedUnknown(index: index) }
                    if matched != 1 { return .rowCount(index: index, count: matched) }
                case .returnedOne:
                    if returned != 1 { return .rowCount(index: index, count: UInt64(returned)) }
                case .affectedAtMost(let limit):
                    if affected > limit { return .rowCount(index: index, count: affected) }
                case .matchedAtMostOne:
                    guard let matched else { return .matchedUnknown(index: index) }
                    if matched > 1 { return .rowCount(index: index, count: matched) }
                case .returnedAtMostOne:
                    if returned > 1 { return .rowCount(index: index, count: UInt64(returned)) }
                }
            }
        }
        guard outcomes.count == statements.count else {
            return .outcomeCount(outcomes: outcomes.count, statements: statements.count)
        }
        return nil
    }
}

extension StatementContext {
    /// The context of the statement that applies `change`, in the call (batch and source
    /// transaction) that `call` names: an error then names the row's table and key.
    public init(applying change: RowChange, in call: StatementContext) {
        let what =
            switch change.kind {
            case .insert: "insert"
            case .copy: "copy"
            case .update: "update"
            case .delete: "delete"
            case .truncate: "truncate"
            }
        self.init(what: what, batch: call.batch, position: call.position, table: change.relation.name, change: change)
    }
}
