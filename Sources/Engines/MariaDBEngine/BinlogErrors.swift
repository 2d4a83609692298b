import TandemCore

/// Why an event's bytes were refused. Every case names the event type and, where it
/// applies, the field and its offset from the start of the event, so a corrupt stream
/// can be diagnosed from the error alone.
public enum BinlogParseError: Error, Hashable, Sendable {
    /// Fewer than the 19 header bytes.
    case truncatedHeader(length: Int)
    /// The header's `event_size` disagrees with the bytes handed in.
    case eventSizeMismatch(type: UInt8, declared: UInt32, actual: Int)
    case checksumMismatch(type: UInt8, stored: UInt32, computed: UInt32)
    case unsupportedChecksumAlgorithm(UInt8)
    case unsupportedBinlogVersion(UInt16)
    /// A FORMAT_DESCRIPTION announcing a common header other than 19 bytes.
    case unsupportedHeaderLength(UInt8)
    /// The event ended before `field` (needed `needed` bytes at `offset`).
    case truncated(event: UInt8, field: String, offset: Int, needed: Int)
    /// Bytes left over after a complete body: the framing is not what it should be.
    case trailingBytes(event: UInt8, count: Int)
    case invalidUTF8(event: UInt8, field: String, offset: Int)
    case invalidValue(event: UInt8, field: String, offset: Int, reason: String)
    /// A TABLE_MAP column type whose metadata size is unknown (so nothing after it can be read).
    case unknownColumnType(column: Int, type: UInt8)
    /// The TABLE_MAP metadata block is not exactly what the column types need.
    case metadataLengthMismatch(declared: Int, used: Int)
    /// The server declared a post-header shorter than the format needs.
    case postHeaderTooShort(event: UInt8, length: Int, minimum: Int)
    /// A compressed event whose payload header is not MariaDB's (bit 7 set, zlib, 1–4 length bytes).
    case badCompressionHeader(event: UInt8, byte: UInt8)
    /// A compressed event declaring more than the parser's limit.
    case decompressedSizeTooLarge(event: UInt8, declared: UInt64, limit: Int)
    case decompression(event: UInt8, InflateError)
    /// A binlog file not starting with 0xFE 'b' 'i' 'n'.
    case badMagic
}

/// Why a stream of well-formed events was refused, or a row could not be decoded.
///
/// A thrown error means the stream cannot be trusted from here on: the capture layer
/// stops and later restarts from its last acknowledged GTID position with a fresh
/// decoder; it never skips the event.
public enum BinlogDecodeError: Error, Hashable, Sendable {
    case parse(BinlogParseError)

    // MARK: Event order
    /// A GTID arrived while the previous group was still open.
    case gtidInsideGroup(open: MariaDBGTID, new: MariaDBGTID)
    /// A GTID whose sequence is not above the last one seen in its domain (strict mode order).
    case gtidOutOfOrder(previous: MariaDBGTID, new: MariaDBGTID)
    /// An event that belongs inside a group (rows, table map, XID, query) arrived outside one.
    case outsideGroup(type: UInt8)
    /// An event that may only appear between groups (ROTATE, FORMAT_DESCRIPTION, …) inside one.
    case insideGroup(type: UInt8, gtid: MariaDBGTID)
    /// XID or COMMIT closing a standalone group, which has no terminator.
    case terminatorInStandaloneGroup(gtid: MariaDBGTID)
    /// Row events in a standalone group (its only statement is a query).
    case rowsInStandaloneGroup(gtid: MariaDBGTID)
    /// A statement inside a transaction that is neither BEGIN, COMMIT nor SAVEPOINT: with
    /// `binlog_format=ROW` only DDL does this, and DDL groups are flagged (statement-based
    /// DML, ROLLBACK of non-transactional changes, ROLLBACK TO SAVEPOINT land here).
    case unexpectedStatement(gtid: MariaDBGTID, statement: String)
    case unsupportedXA(gtid: MariaDBGTID)
    /// An event type the decoder cannot safely ignore (not flagged ignorable).
    case unsupportedEvent(type: UInt8)
    /// The primary logged an INCIDENT: events are missing from the binlog.
    case incident
    /// START_ENCRYPTION: the events after it are encrypted (read them through the server).
    case encryptedBinlog

    // MARK: Tables and rows
    case unknownTableID(UInt64)
    /// A TABLE_MAP lacks optional metadata the decoder needs (`binlog_row_metadata=FULL`).
    case missingMetadata(table: RelationName, what: String)
    case invalidTableMap(table: RelationName, reason: String)
    case unsupportedColumn(table: RelationName, column: String, reason: String)
    case columnCountMismatch(table: RelationName, tableMap: Int, rowsEvent: Int)
    /// A row image ended inside `column`.
    case truncatedRow(table: RelationName, column: String)
    case invalidValue(table: RelationName, column: String, reason: String)
    /// A row image with no columns present: it takes no bytes, so the event cannot be framed.
    case emptyRowImage(table: RelationName)
}
