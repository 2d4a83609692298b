import TandemVerify

/// The key ranges `side` splits `table` into, `rows` rows each (the last may hold fewer), as
/// `tandem verify` walks a table: each boundary from the previous one, the last range open.
public func verifyChunks(_ side: VerifySide, _ table: VerifyTable, rows: Int) throws -> [KeyRange] {
    var ranges: [KeyRange] = []
    var lower: KeyValue?
    while let upper = try side.boundary(table, after: lower, rows: rows) {
        ranges.append(KeyRange(after: lower, through: upper))
        lower = upper
    }
    ranges.append(KeyRange(after: lower, through: nil))
    return ranges
}

/// Each range's checksum at `side`.
public func verifySums(_ side: VerifySide, _ table: VerifyTable, _ ranges: [KeyRange]) throws -> [ChunkSum] {
    try ranges.map { try side.checksum(table, $0) }
}

/// One table at two sites, split into chunks by the first, compared as verify compares them:
/// what the engines' tests assert, the same for every engine.
public struct VerifyPair {
    public let first: VerifySide
    public let second: VerifySide
    public let table: VerifyTable
    public let rows: Int
    public let ranges: [KeyRange]

    public init(_ first: VerifySide, _ second: VerifySide, _ table: VerifyTable, rows: Int) throws {
        self.first = first
        self.second = second
        self.table = table
        self.rows = rows
        self.ranges = try verifyChunks(first, table, rows: rows)
    }

    /// What verify sees of one row whose value changed at the second site.
    public struct Difference: Equatable, Sendable {
        /// The indexes of the chunks whose checksums differ.
        public var chunks: [Int]
        /// The columns whose digests differ in the row.
        public var columns: [String]
        /// Whether the chunks were all alike again once the value was put back.
        public var restored: Bool

        public init(chunks: [Int], columns: [String], restored: Bool = true) {
            self.chunks = chunks
            self.columns = columns
            self.restored = restored
        }
    }

    /// Both sites' checksums of every chunk.
    public func sums() throws -> (first: [ChunkSum], second: [ChunkSum]) {
        (try verifySums(first, table, ranges), try verifySums(second, table, ranges))
    }

    /// Everything in which the two sites disagree about the table: their chunk boundaries, a
    /// chunk's checksum, a row's digests. Empty for identical copies.
    public func mismatches() throws -> [String] {
        var found: [String] = []
        if try verifyChunks(second, table, rows: rows) != ranges {
            found.append("the sites split \(table) differently")
        }
        found += try differingChunks().map { "chunk \(ranges[$0]) differs" }
        if try first.rows(table, .all, limit: 1_000_000) != second.rows(table, .all, limit: 1_000_000) {
            found.append("the rows of \(table) differ")
        }
        return found
    }

    /// The indexes of the chunks whose checksums differ.
    public func differingChunks() throws -> [Int] {
        let (mine, theirs) = try sums()
        return ranges.indices.filter { mine[$0] != theirs[$0] }
    }

    /// The columns whose digests differ in the one row in `range`; a note instead when the range
    /// does not hold one row with the same key at both sites.
    public func differingColumns(in range: KeyRange) throws -> [String] {
        let one = try first.rows(table, range, limit: 2)
        let other = try second.rows(table, range, limit: 2)
        guard one.count == 1, other.count == 1, one[0].key == other[0].key else {
            return ["(not one row in \(range) at both sites)"]
        }
        return table.columns.indices.filter { one[0].columns[$0] != other[0].columns[$0] }.map { table.columns[$0] }
    }

    /// Sets `column` of the row keyed by the integer `id` to `value` at the second site through
    /// `run`, reads what verify sees, and sets it back to `original`.
    public func change(
        row id: Int, _ column: String, to value: String, back original: String, run: (String) throws -> Void
    ) throws -> Difference {
        let update = { (value: String) in "UPDATE \(table.name) SET \(column) = \(value) WHERE id = \(id)" }
        try run(update(value))
        let chunks = try differingChunks()
        let columns = try differingColumns(
            in: KeyRange(after: KeyValue(parts: [String(id - 1)]), through: KeyValue(parts: [String(id)])))
        try run(update(original))
        return Difference(chunks: chunks, columns: columns, restored: try differingChunks().isEmpty)
    }
}
