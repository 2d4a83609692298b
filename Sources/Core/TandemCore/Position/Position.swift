/// Where a stream stands in the source database's own log.
///
/// A position is engine-specific by nature and is never translated: it is what the
/// shipper acknowledges to the source (the slot's flush LSN, the saved GTID) and
/// what the applier records in its checkpoint, so it must round-trip exactly.
public enum Position: Hashable, Sendable, CustomStringConvertible {
    case postgresql(LSN)
    case mariadb(MariaDBGTIDList)
    case mysql(MySQLPosition)

    public var engine: DatabaseEngine {
        switch self {
        case .postgresql: .postgresql
        case .mariadb: .mariadb
        case .mysql: .mysql
        }
    }

    /// Parses the engine's usual text form (`16/B374D848`, `0-1-42,1-2-7`, a GTID set).
    public init(engine: DatabaseEngine, parsing text: String) throws(PositionError) {
        switch engine {
        case .postgresql: self = .postgresql(try LSN(parsing: text))
        case .mariadb: self = .mariadb(try MariaDBGTIDList(parsing: text))
        case .mysql: self = .mysql(MySQLPosition(gtidSet: try MySQLGTIDSet(parsing: text)))
        }
    }

    /// Compares two positions of one stream.
    ///
    /// Returns `.incomparable` for positions of different engines, and for GTID
    /// positions where each side is ahead in some domain or server — such a pair
    /// never comes from one stream, and treating it as ordered would risk skipping
    /// or re-applying transactions.
    public func compare(to other: Position) -> PositionOrder {
        switch (self, other) {
        case let (.postgresql(a), .postgresql(b)):
            a < b ? .before : (a == b ? .same : .after)
        case let (.mariadb(a), .mariadb(b)):
            a.compare(to: b)
        case let (.mysql(a), .mysql(b)):
            a.gtidSet.compare(to: b.gtidSet)
        default:
            .incomparable
        }
    }

    /// True when `self` is at or before `other`. Incomparable positions are not.
    public func isAtOrBefore(_ other: Position) -> Bool {
        let order = compare(to: other)
        return order == .before || order == .same
    }

    public var description: String {
        switch self {
        case .postgresql(let lsn): lsn.description
        case .mariadb(let list): list.description
        case .mysql(let position): position.description
        }
    }
}

/// The result of comparing two positions.
public enum PositionOrder: Sendable, Hashable {
    case before, same, after, incomparable

    init(selfAhead: Bool, otherAhead: Bool) {
        switch (selfAhead, otherAhead) {
        case (false, false): self = .same
        case (true, false): self = .after
        case (false, true): self = .before
        case (true, true): self = .incomparable
        }
    }
}

/// A position text that does not parse, with what was expected.
public struct PositionError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The engine the text was read for; nil when the text did not even say (`storedText`).
    public var engine: DatabaseEngine?
    public var text: String
    public var expected: String

    public init(_ engine: DatabaseEngine?, text: String, expected: String) {
        self.engine = engine
        self.text = text
        self.expected = expected
    }

    public var description: String {
        "invalid \(engine.map { "\($0) " } ?? "")position \"\(text)\": expected \(expected)"
    }
}

extension StringProtocol {
    func trimmingASCIIWhitespace() -> String {
        String(trimmingASCIIWhitespaceSubstring())
    }

    func trimmingASCIIWhitespaceSubstring() -> Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        let s = Substring(self)
        guard let first = s.firstIndex(where: { !isSpace($0) }), let last = s.lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return s[first...last]
    }
}
