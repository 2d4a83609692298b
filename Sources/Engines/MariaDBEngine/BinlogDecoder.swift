import TandemCore

/// What the decoder hands on after an event.
public enum BinlogDecoderEvent: Hashable, Sendable {
    /// A committed transaction, with its position (the GTID state after it) and commit time;
    /// the final chunk of one whose earlier chunks came as `.chunk`.
    case transaction(Transaction)
    /// A non-final piece of a large transaction (`BinlogDecoder.chunkChanges`): the binlog
    /// holds only committed groups, so it may be shipped at once, but the source may not be
    /// acknowledged for it (same commit position as the rest, `chunk.isFinal` false).
    case chunk(Transaction)
    /// A group whose statement changes the schema (or otherwise is not row data): the
    /// capture layer stops with a clear message rather than replicate around it.
    case ddl(statement: String, gtid: MariaDBGTID)
}

/// Turns raw binlog events (ROW format, MariaDB GTIDs) into Tandem `Transaction`s. Pure:
/// the caller feeds each event's bytes (from the replication connection or a binlog file)
/// and gets events back; no I/O, no clocks.
///
/// Event groups on MariaDB:
/// - a transaction: GTID, optional QUERY "BEGIN", then per statement TABLE_MAPs and rows
///   events, closed by XID (transactional engines) or QUERY "COMMIT" (others);
/// - a standalone group (GTID flagged standalone, e.g. DDL): GTID then one QUERY, no
///   terminator; emitted as `.ddl`;
/// - a DDL-flagged group with a terminator (CREATE TABLE … SELECT): emitted as `.ddl` at
///   its end, its rows dropped (replaying DDL is not the decoder's business).
///
/// Invariants:
/// - `gtidState` is the position after the last group handed on (or the start position):
///   a transaction's `commitPosition` is the state with its domain advanced to its GTID,
///   so acknowledging it means "everything up to and including this transaction".
/// - Rows events resolve their table id through the latest TABLE_MAP with that id; ids are
///   reused for other tables after DDL, so maps are never trusted across groups (the map
///   table is cleared when a group ends).
/// - Rows of `tandem.seed_mark` are a seed's watermarks: they become the transaction's
///   `seedMarks` (`SeedMarkTable`), never row changes.
/// - Every inconsistency throws; after a throw the decoder must be discarded.
public struct BinlogDecoder: Sendable {
    private struct Group {
        var event: GTIDEvent
        var gtid: MariaDBGTID
        var sawStatement = false
        var ddl: String?
        var changes: [RowChange] = []
        /// Rows of `tandem.seed_mark` written in this group (see `SeedMarkTable`).
        var seedMarks: [SeedMark] = []
        /// The GTID event's time, for chunks handed on before the group's end.
        var startTime: UInt32 = 0
        var emittedChunks: UInt32 = 0
    }

    /// A group holding this many row changes is handed on as a `.chunk` and decoding goes
    /// on, so memory does not grow with the transaction. `Int.max` never cuts.
    public var chunkChanges: Int = .max

    public private(set) var parser: BinlogEventParser
    public let charsets: MariaDBCharsets
    /// The last GTID per domain that was handed on (see the type's invariants).
    public private(set) var gtidState: MariaDBGTIDList
    /// Binlog file and the position after the last event, from ROTATE and `log_pos`.
    public private(set) var binlogFile: String?
    public private(set) var binlogPosition: UInt64 = 0
    private var group: Group?
    private var tableMaps: [UInt64: TableMapEvent] = [:]
    /// Resolved tables by table id, reused while the TABLE_MAP is byte-for-byte the same.
    private var resolved: [UInt64: (map: TableMapEvent, table: BinlogTable)] = [:]

    public init(startPosition: MariaDBGTIDList, checksum: BinlogChecksum = .crc32, charsets: MariaDBCharsets = .builtin)
    {
        self.parser = BinlogEventParser(checksum: checksum)
        self.charsets = charsets
        self.gtidState = startPosition
    }

    /// True between a GTID and the end of its group.
    public var isInGroup: Bool { group != nil }

    /// Decodes one raw event (header, body, checksum).
    public mutating func feed(_ bytes: [UInt8]) throws(BinlogDecodeError) -> BinlogDecoderEvent? {
        let event: BinlogEvent
        do { event = try parser.parse(bytes) } catch { throw .parse(error) }
        return try feed(event)
    }

    public mutating func feed(_ bytes: ArraySlice<UInt8>) throws(BinlogDecodeError) -> BinlogDecoderEvent? {
        let event: BinlogEvent
        do { event = try parser.parse(bytes) } catch { throw .parse(error) }
        return try feed(event)
    }

    /// Applies an already parsed event (a FORMAT_DESCRIPTION is adopted by the decoder's
    /// parser, so raw and parsed events may be mixed).
    public mutating func feed(_ event: BinlogEvent) throws(BinlogDecodeError) -> BinlogDecoderEvent? {
        let header = event.header
        let type = header.typeCode
        if header.logPosition != 0 { binlogPosition = UInt64(header.logPosition) }

        switch event.body {
        case .gtid(let gtidEvent):
            let gtid = gtidEvent.gtid(serverID: header.serverID)
            if let open = group { throw .gtidInsideGroup(open: open.gtid, new: gtid) }
            guard !gtidEvent.isXA else { throw .unsupportedXA(gtid: gtid) }
            if let last = gtidState.gtids.first(where: { $0.domain == gtid.domain }), last.sequence >= gtid.sequence {
                throw .gtidOutOfOrder(previous: last, new: gtid)
            }
            group = Group(event: gtidEvent, gtid: gtid, startTime: header.timestamp)
            return nil

        case .query(let query):
            guard var open = group else { throw .outsideGroup(type: type) }
            let statement = query.statementText
            let keyword = Self.keyword(statement)
            // A standalone group is exactly one statement: it ends the group.
            if open.event.isStandalone { return finish(open, ddl: statement, header: header) }
            switch keyword {
            case "BEGIN":
                guard !open.sawStatement, open.changes.isEmpty else {
                    throw .unexpectedStatement(gtid: open.gtid, statement: statement)
                }
                open.sawStatement = true
            case "COMMIT":
                return finish(open, ddl: open.ddl, header: header)
            case "SAVEPOINT":
                // Logged inside transactions; the rows of a rolled-back savepoint are never logged.
                open.sawStatement = true
            default:
                guard open.event.isDDL else { throw .unexpectedStatement(gtid: open.gtid, statement: statement) }
                open.sawStatement = true
                open.ddl = open.ddl ?? statement
            }
            group = open
            return nil

        case .xid:
            guard let open = group else { throw .outsideGroup(type: type) }
            guard !open.event.isStandalone else { throw .terminatorInStandaloneGroup(gtid: open.gtid) }
            return finish(open, ddl: open.ddl, header: header)

        case .tableMap(let map):
            guard let open = group else { throw .outsideGroup(type: type) }
            guard !open.event.isStandalone else { throw .rowsInStandaloneGroup(gtid: open.gtid) }
            tableMaps[map.tableID] = map
            return nil

        case .rows(let rows):
            guard var open = group else { throw .outsideGroup(type: type) }
            guard !open.event.isStandalone else { throw .rowsInStandaloneGroup(gtid: open.gtid) }
            // An empty rows event only ends a statement (old servers use a dummy table id).
            if rows.rowData.isEmpty { return nil }
            guard let map = tableMaps[rows.tableID] else { throw .unknownTableID(rows.tableID) }
            // The rows of a DDL group (CREATE TABLE … SELECT) are not replicated as rows.
            guard open.ddl == nil else { return nil }
            let decoded = try RowImageDecoder.changes(rows, table: try table(for: map))
            // A seed's watermark travels as the transaction's mark, never as a row (like the
            // heartbeat, the DR site has no such table).
            if map.schema == SeedMarkTable.name.schema, map.table == SeedMarkTable.name.name {
                open.seedMarks += decoded.compactMap(SeedMarkTable.mark(in:))
                group = open
                return nil
            }
            open.changes += decoded
            if open.changes.count >= chunkChanges {
                let piece = Transaction(
                    commitPosition: .mariadb(gtidState.advanced(by: open.gtid)),
                    commitTime: Timestamp(microsecondsSinceEpoch: Int64(open.startTime) * 1_000_000),
                    origin: "\(open.gtid.domain)-\(open.gtid.server)",
                    chunk: TransactionChunk(index: open.emittedChunks, isFinal: false), changes: open.changes)
                open.changes = []
                open.emittedChunks += 1
                group = open
                return .chunk(piece)
            }
            group = open
            return nil

        case .rotate(let rotate):
            if let open = group { throw .insideGroup(type: type, gtid: open.gtid) }
            binlogFile = rotate.fileName
            binlogPosition = rotate.position
            return nil

        case .heartbeat(let fileName):
            binlogFile = fileName
            return nil

        case .formatDescription(let description):
            if let open = group { throw .insideGroup(type: type, gtid: open.gtid) }
            parser.adopt(description)
            return nil

        case .gtidList, .binlogCheckpoint:
            if let open = group { throw .insideGroup(type: type, gtid: open.gtid) }
            return nil

        case .annotateRows:
            return nil

        case .other(let other):
            switch other {
            case BinlogEventType.incident: throw .incident
            case BinlogEventType.startEncryption: throw .encryptedBinlog
            case BinlogEventType.stop:
                if let open = group { throw .insideGroup(type: type, gtid: open.gtid) }
                return nil
            default:
                if header.isIgnorable { return nil }
                throw .unsupportedEvent(type: other)
            }
        }
    }

    private mutating func table(for map: TableMapEvent) throws(BinlogDecodeError) -> BinlogTable {
        if let cached = resolved[map.tableID], cached.map == map { return cached.table }
        let table = try BinlogTable(map, charsets: charsets)
        // Bounded: ids grow as tables are reopened; a full cache simply starts over.
        if resolved.count >= 4096 { resolved.removeAll(keepingCapacity: true) }
        resolved[map.tableID] = (map, table)
        return table
    }

    private mutating func finish(_ open: Group, ddl: String?, header: BinlogEventHeader) -> BinlogDecoderEvent {
        group = nil
        tableMaps.removeAll(keepingCapacity: true)
        gtidState = gtidState.advanced(by: open.gtid)
        if let ddl { return .ddl(statement: ddl, gtid: open.gtid) }
        return .transaction(
            Transaction(
                commitPosition: .mariadb(gtidState),
                commitTime: Timestamp(microsecondsSinceEpoch: Int64(header.timestamp) * 1_000_000),
                origin: "\(open.gtid.domain)-\(open.gtid.server)",
                chunk: TransactionChunk(index: open.emittedChunks, isFinal: true),
                changes: open.changes, seedMarks: open.seedMarks))
    }

    /// The first word of a statement, upper-cased ASCII ("BEGIN", "COMMIT", "SAVEPOINT", …).
    static func keyword(_ statement: String) -> String {
        let word = statement.utf8.drop { $0 == 32 || $0 == 9 || $0 == 10 || $0 == 13 }
            .prefix { ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) }
        return String(decoding: word.map { $0 >= 97 ? $0 - 32 : $0 }, as: UTF8.self)
    }
}
