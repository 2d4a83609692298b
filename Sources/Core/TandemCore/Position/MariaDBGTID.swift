/// One MariaDB global transaction id: `domain-server-sequence`.
public struct MariaDBGTID: Hashable, Sendable, CustomStringConvertible {
    public var domain: UInt32
    public var server: UInt32
    public var sequence: UInt64

    public init(domain: UInt32, server: UInt32, sequence: UInt64) {
        self.domain = domain
        self.server = server
        self.sequence = sequence
    }

    public init(parsing text: Substring) throws(PositionError) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3,
            parts.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } }),
            let domain = UInt32(parts[0]), let server = UInt32(parts[1]), let sequence = UInt64(parts[2])
        else {
            throw PositionError(
                .mariadb, text: String(text), expected: "a GTID like 0-1-42 (domain-server-sequence, decimal)")
        }
        self.init(domain: domain, server: server, sequence: sequence)
    }

    public var description: String { "\(domain)-\(server)-\(sequence)" }
}

/// A MariaDB replication position: the last GTID seen in each replication domain,
/// as in `@@gtid_binlog_pos` or `@@gtid_slave_pos` (`0-1-100,1-2-5`).
///
/// Within a domain, sequence numbers only grow, whichever server wrote them (a
/// switchover changes the server id, not the order), so positions are compared by
/// sequence per domain. Positions taken from one binlog stream always dominate one
/// another; two lists where each is ahead in some domain are not comparable and
/// `compare` says so rather than inventing an order.
public struct MariaDBGTIDList: Hashable, Sendable, CustomStringConvertible {
    /// Sorted by domain, at most one GTID per domain.
    public private(set) var gtids: [MariaDBGTID]

    public init() { gtids = [] }

    public init(_ gtids: [MariaDBGTID]) throws(PositionError) {
        let sorted = gtids.sorted { $0.domain < $1.domain }
        for index in sorted.indices.dropFirst() where sorted[index].domain == sorted[index - 1].domain {
            throw PositionError(
                .mariadb, text: gtids.map(\.description).joined(separator: ","),
                expected: "at most one GTID per domain (domain \(sorted[index].domain) appears twice)")
        }
        self.gtids = sorted
    }

    /// Parses `@@gtid_binlog_pos` text. The empty string is the empty position
    /// (a server that has written nothing yet).
    public init(parsing text: String) throws(PositionError) {
        let trimmed = text.trimmingASCIIWhitespace()
        if trimmed.isEmpty { self.init(); return }
        var list: [MariaDBGTID] = []
        for item in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
            list.append(try MariaDBGTID(parsing: item.trimmingASCIIWhitespaceSubstring()))
        }
        try self.init(list)
    }

    public func sequence(inDomain domain: UInt32) -> UInt64? {
        gtids.first { $0.domain == domain }?.sequence
    }

    /// The position after a transaction with `gtid` commits: its domain advances.
    public func advanced(by gtid: MariaDBGTID) -> MariaDBGTIDList {
        var copy = self
        if let index = copy.gtids.firstIndex(where: { $0.domain == gtid.domain }) {
            copy.gtids[index] = gtid
        } else {
            copy.gtids.append(gtid)
            copy.gtids.sort { $0.domain < $1.domain }
        }
        return copy
    }

    public func compare(to other: MariaDBGTIDList) -> PositionOrder {
        var selfAhead = false
        var otherAhead = false
        var i = 0, j = 0
        while i < gtids.count || j < other.gtids.count {
            if j == other.gtids.count || (i < gtids.count && gtids[i].domain < other.gtids[j].domain) {
                selfAhead = true; i += 1
            } else if i == gtids.count || other.gtids[j].domain < gtids[i].domain {
                otherAhead = true; j += 1
            } else {
                if gtids[i].sequence > other.gtids[j].sequence { selfAhead = true }
                if gtids[i].sequence < other.gtids[j].sequence { otherAhead = true }
                i += 1; j += 1
            }
        }
        return PositionOrder(selfAhead: selfAhead, otherAhead: otherAhead)
    }

    public var description: String { gtids.map(\.description).joined(separator: ",") }
}
