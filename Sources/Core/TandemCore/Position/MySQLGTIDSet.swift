/// A MySQL GTID set, as in `@@gtid_executed`: `3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5:11,…`.
///
/// Stored normalised — server UUIDs lower-cased and sorted, intervals sorted and
/// merged — so that two sets naming the same transactions are equal and print the
/// same. Order is set containment: a later position of one stream contains every
/// earlier one. (MySQL 8.3 tagged GTIDs, `uuid:tag:1-5`, are not accepted yet.)
public struct MySQLGTIDSet: Hashable, Sendable, CustomStringConvertible {
    /// An inclusive range of transaction numbers from one server.
    public struct Interval: Hashable, Sendable {
        public var lower: UInt64
        public var upper: UInt64
        public init(_ lower: UInt64, _ upper: UInt64) { self.lower = lower; self.upper = upper }
    }

    /// Server UUID (lower-case canonical text) → sorted, disjoint, non-adjacent intervals.
    public private(set) var servers: [String: [Interval]]

    public init() { servers = [:] }

    public init(parsing text: String) throws(PositionError) {
        servers = [:]
        let compact = String(text.unicodeScalars.filter { !$0.properties.isWhitespace })
        if compact.isEmpty { return }
        for entry in compact.split(separator: ",", omittingEmptySubsequences: false) {
            let fields = entry.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count >= 2, let uuid = MySQLGTIDSet.canonicalUUID(fields[0]) else {
                throw PositionError(
                    .mysql, text: text, expected: "a GTID set like 3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:11")
            }
            for field in fields.dropFirst() {
                let bounds = field.split(separator: "-", omittingEmptySubsequences: false)
                guard (1...2).contains(bounds.count),
                    bounds.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } }),
                    let lower = UInt64(bounds[0]), let upper = UInt64(bounds.last!),
                    lower >= 1, lower <= upper
                else {
                    throw PositionError(
                        .mysql, text: text,
                        expected: "transaction ranges like 1-5 or 11 (positive, ascending) after each server UUID")
                }
                insert(uuid: uuid, Interval(lower, upper))
            }
        }
    }

    /// Adds one committed transaction, as the shipper does after each commit.
    public mutating func insert(uuid: String, transaction number: UInt64) {
        insert(uuid: uuid.lowercased(), Interval(number, number))
    }

    private mutating func insert(uuid: String, _ interval: Interval) {
        var list = servers[uuid, default: []]
        list.append(interval)
        list.sort { $0.lower < $1.lower }
        var merged: [Interval] = []
        for item in list {
            if let last = merged.last, last.upper == .max || item.lower <= last.upper + 1 {
                merged[merged.count - 1].upper = max(last.upper, item.upper)
            } else {
                merged.append(item)
            }
        }
        servers[uuid] = merged
    }

    public func contains(_ other: MySQLGTIDSet) -> Bool {
        for (uuid, theirs) in other.servers {
            guard let mine = servers[uuid] else { return false }
            for interval in theirs
            where !mine.contains(where: { $0.lower <= interval.lower && interval.upper <= $0.upper }) {
                return false
            }
        }
        return true
    }

    public func compare(to other: MySQLGTIDSet) -> PositionOrder {
        PositionOrder(selfAhead: !other.contains(self), otherAhead: !contains(other))
    }

    public var description: String {
        servers.keys.sorted().map { uuid in
            ([uuid] + servers[uuid]!.map { $0.lower == $0.upper ? "\($0.lower)" : "\($0.lower)-\($0.upper)" })
                .joined(separator: ":")
        }.joined(separator: ",")
    }

    static func canonicalUUID(_ text: Substring) -> String? {
        let groups = text.split(separator: "-", omittingEmptySubsequences: false)
        guard groups.map(\.utf8.count) == [8, 4, 4, 4, 12],
            groups.allSatisfy({ $0.utf8.allSatisfy(\.isASCIIHexDigit) })
        else { return nil }
        return text.lowercased()
    }
}

/// A MySQL position: the GTID set executed so far, plus the binlog file and offset
/// where that set ends on the server the shipper reads from. The GTID set is what
/// resumes replication and orders positions; the coordinates are for operators and
/// for reading the binlog without GTIDs.
public struct MySQLPosition: Hashable, Sendable, CustomStringConvertible {
    public var gtidSet: MySQLGTIDSet
    public var binlogFile: String?
    public var binlogOffset: UInt64?

    public init(gtidSet: MySQLGTIDSet, binlogFile: String? = nil, binlogOffset: UInt64? = nil) {
        self.gtidSet = gtidSet
        self.binlogFile = binlogFile
        self.binlogOffset = binlogOffset
    }

    public var description: String {
        if let file = binlogFile, let offset = binlogOffset { return "\(gtidSet) (\(file):\(offset))" }
        return gtidSet.description
    }
}

extension UInt8 {
    var isASCIIHexDigit: Bool {
        (self >= 48 && self <= 57) || (self | 0x20 >= 97 && self | 0x20 <= 102)
    }
}
