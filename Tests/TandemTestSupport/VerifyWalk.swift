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

/// The names of the columns whose digests differ between two sites' copies of one row.
public func differingColumns(_ table: VerifyTable, _ one: VerifyRow, _ other: VerifyRow) -> [String] {
    table.columns.indices.filter { one.columns[$0] != other.columns[$0] }.map { table.columns[$0] }
}
