import TandemCore

/// Event type codes of the binlog (MySQL's `Log_event_type` plus MariaDB's from 160 on)
/// that this module gives a meaning to. Any other code parses as `.other`.
public enum BinlogEventType {
    public static let query: UInt8 = 2
    public static let stop: UInt8 = 3
    public static let rotate: UInt8 = 4
    public static let intvar: UInt8 = 5
    public static let rand: UInt8 = 13
    public static let userVariable: UInt8 = 14
    public static let formatDescription: UInt8 = 15
    public static let xid: UInt8 = 16
    public static let tableMap: UInt8 = 19
    public static let writeRowsV1: UInt8 = 23
    public static let updateRowsV1: UInt8 = 24
    public static let deleteRowsV1: UInt8 = 25
    public static let incident: UInt8 = 26
    public static let heartbeat: UInt8 = 27
    /// MySQL's version-2 rows events (an extra-data block after the flags). MariaDB does
    /// not write them; they parse the same way.
    public static let writeRowsV2: UInt8 = 30
    public static let updateRowsV2: UInt8 = 31
    public static let deleteRowsV2: UInt8 = 32
    public static let xaPrepare: UInt8 = 38
    public static let annotateRows: UInt8 = 160
    public static let binlogCheckpoint: UInt8 = 161
    public static let gtid: UInt8 = 162
    public static let gtidList: UInt8 = 163
    public static let startEncryption: UInt8 = 164
    public static let queryCompressed: UInt8 = 165
    /// What MariaDB writes with `log_bin_compress=ON` (version-1 layout, rows compressed).
    public static let writeRowsCompressedV1: UInt8 = 166
    public static let updateRowsCompressedV1: UInt8 = 167
    public static let deleteRowsCompressedV1: UInt8 = 168
    /// Compressed rows events with the version-2 layout.
    public static let writeRowsCompressedV2: UInt8 = 169
    public static let updateRowsCompressedV2: UInt8 = 170
    public static let deleteRowsCompressedV2: UInt8 = 171
}

/// The 19-byte v4 header every event starts with (all fields little-endian).
public struct BinlogEventHeader: Hashable, Sendable {
    /// Seconds since the epoch when the statement started (for XID: at commit).
    public var timestamp: UInt32
    public var typeCode: UInt8
    public var serverID: UInt32
    /// Size of the whole event: header, body and checksum trailer.
    public var eventSize: UInt32
    /// Position just after this event in its binlog file; 0 for artificial events.
    public var logPosition: UInt32
    public var flags: UInt16

    public static let length = 19
    /// `LOG_EVENT_BINLOG_IN_USE_F`: set in the file's FORMAT_DESCRIPTION while the file is
    /// open. The flag is flipped in place on close, so the checksum is computed without it.
    public static let binlogInUseFlag: UInt16 = 0x0001
    /// `LOG_EVENT_ARTIFICIAL_F`: made up by the server for the stream (fake ROTATE).
    public static let artificialFlag: UInt16 = 0x0020
    /// `LOG_EVENT_IGNORABLE_F`: a reader that does not know the type may skip the event.
    public static let ignorableFlag: UInt16 = 0x0080

    public init(
        timestamp: UInt32, typeCode: UInt8, serverID: UInt32, eventSize: UInt32, logPosition: UInt32,
        flags: UInt16
    ) {
        self.timestamp = timestamp
        self.typeCode = typeCode
        self.serverID = serverID
        self.eventSize = eventSize
        self.logPosition = logPosition
        self.flags = flags
    }

    public var isArtificial: Bool { flags & Self.artificialFlag != 0 }
    public var isIgnorable: Bool { flags & Self.ignorableFlag != 0 }
}

/// One binlog event: its header and its typed body, exactly as the server wrote it
/// (compressed payloads already inflated, the checksum already verified and removed).
public struct BinlogEvent: Hashable, Sendable {
    public var header: BinlogEventHeader
    public var body: BinlogEventBody

    public init(header: BinlogEventHeader, body: BinlogEventBody) {
        self.header = header
        self.body = body
    }
}

public enum BinlogEventBody: Hashable, Sendable {
    case formatDescription(FormatDescriptionEvent)
    case rotate(RotateEvent)
    case gtid(GTIDEvent)
    case gtidList(GTIDListEvent)
    case binlogCheckpoint(fileName: String)
    case query(QueryEvent)
    case xid(UInt64)
    case tableMap(TableMapEvent)
    case rows(RowsEvent)
    /// Sent by the primary on an idle stream; the file it is positioned in.
    case heartbeat(fileName: String)
    /// The SQL text of the statement whose rows follow (`binlog_annotate_row_events`).
    case annotateRows(statement: [UInt8])
    /// Any other event type; its body is not interpreted.
    case other(type: UInt8)
}

/// Checksum algorithm of the events after a FORMAT_DESCRIPTION (`binlog_checksum`).
public enum BinlogChecksum: Hashable, Sendable {
    /// No trailer (`binlog_checksum=NONE`).
    case none
    /// A 4-byte little-endian CRC-32 of everything before it.
    case crc32
}

public struct FormatDescriptionEvent: Hashable, Sendable {
    public var binlogVersion: UInt16
    public var serverVersion: String
    public var createTimestamp: UInt32
    public var headerLength: UInt8
    /// Post-header length per event type, indexed by type code − 1.
    public var postHeaderLengths: [UInt8]
    /// The algorithm that applies to the following events (and to this event itself).
    public var checksum: BinlogChecksum

    public init(
        binlogVersion: UInt16, serverVersion: String, createTimestamp: UInt32, headerLength: UInt8,
        postHeaderLengths: [UInt8], checksum: BinlogChecksum
    ) {
        self.binlogVersion = binlogVersion
        self.serverVersion = serverVersion
        self.createTimestamp = createTimestamp
        self.headerLength = headerLength
        self.postHeaderLengths = postHeaderLengths
        self.checksum = checksum
    }

    /// The post-header length the server declared for `type`, nil if it declared none.
    public func postHeaderLength(of type: UInt8) -> Int? {
        let index = Int(type) - 1
        return index >= 0 && index < postHeaderLengths.count ? Int(postHeaderLengths[index]) : nil
    }
}

public struct RotateEvent: Hashable, Sendable {
    /// Where the next event is in `fileName` (4 for the start of a file).
    public var position: UInt64
    public var fileName: String

    public init(position: UInt64, fileName: String) {
        self.position = position
        self.fileName = fileName
    }
}

/// MariaDB's GTID event: it opens every event group (there is no BEGIN before it).
/// The server id of the GTID is the event header's.
public struct GTIDEvent: Hashable, Sendable {
    /// An XA transaction id (`formatID`, `gtrid`, `bqual`) carried by XA groups.
    public struct XAID: Hashable, Sendable {
        public var formatID: UInt32
        public var gtrid: [UInt8]
        public var bqual: [UInt8]

        public init(formatID: UInt32, gtrid: [UInt8], bqual: [UInt8]) {
            self.formatID = formatID
            self.gtrid = gtrid
            self.bqual = bqual
        }
    }

    public var sequence: UInt64
    public var domain: UInt32
    /// `flags2`: see the `flag…` constants.
    public var flags: UInt8
    /// Present with `flagGroupCommitID`: groups with the same id committed together.
    public var commitID: UInt64?
    public var xa: XAID?
    /// `flags_extra` (0 when absent).
    public var extraFlags: UInt8
    /// With `extraFlagMultiEngine`: how many more engines took part.
    public var extraEngines: UInt8?
    /// With commit/rollback-alter extra flags: the GTID sequence of the START ALTER.
    public var startAlterSequence: UInt64?

    /// No COMMIT/XID follows: the group is one statement (DDL and the like).
    public static let flagStandalone: UInt8 = 0x01
    public static let flagGroupCommitID: UInt8 = 0x02
    public static let flagTransactional: UInt8 = 0x04
    public static let flagAllowParallel: UInt8 = 0x08
    public static let flagWaited: UInt8 = 0x10
    public static let flagDDL: UInt8 = 0x20
    public static let flagPreparedXA: UInt8 = 0x40
    public static let flagCompletedXA: UInt8 = 0x80
    public static let extraFlagMultiEngine: UInt8 = 0x01
    public static let extraFlagStartAlter: UInt8 = 0x02
    public static let extraFlagCommitAlter: UInt8 = 0x04
    public static let extraFlagRollbackAlter: UInt8 = 0x08

    public init(
        sequence: UInt64, domain: UInt32, flags: UInt8, commitID: UInt64? = nil, xa: XAID? = nil,
        extraFlags: UInt8 = 0, extraEngines: UInt8? = nil, startAlterSequence: UInt64? = nil
    ) {
        self.sequence = sequence
        self.domain = domain
        self.flags = flags
        self.commitID = commitID
        self.xa = xa
        self.extraFlags = extraFlags
        self.extraEngines = extraEngines
        self.startAlterSequence = startAlterSequence
    }

    public var isStandalone: Bool { flags & Self.flagStandalone != 0 }
    public var isDDL: Bool { flags & Self.flagDDL != 0 }
    public var isTransactional: Bool { flags & Self.flagTransactional != 0 }
    public var isXA: Bool { flags & (Self.flagPreparedXA | Self.flagCompletedXA) != 0 }

    public func gtid(serverID: UInt32) -> MariaDBGTID {
        MariaDBGTID(domain: domain, server: serverID, sequence: sequence)
    }
}

/// The binlog state at the start of a file (one entry per domain *and* server).
public struct GTIDListEvent: Hashable, Sendable {
    public var gtids: [MariaDBGTID]
    /// The top four bits of the count word (used by the server for internal lists).
    public var flags: UInt8

    public init(gtids: [MariaDBGTID], flags: UInt8 = 0) {
        self.gtids = gtids
        self.flags = flags
    }
}

public struct QueryEvent: Hashable, Sendable {
    public var threadID: UInt32
    public var executionTime: UInt32
    public var errorCode: UInt16
    /// The status variable block, raw (flags2, sql_mode, charsets, …).
    public var statusVariables: [UInt8]
    /// The default database of the session, empty if none.
    public var database: String
    /// The statement bytes in the client's character set; not necessarily UTF-8
    /// (binary literals), hence bytes.
    public var statement: [UInt8]
    /// Whether it arrived as QUERY_COMPRESSED (already inflated here).
    public var wasCompressed: Bool

    public init(
        threadID: UInt32, executionTime: UInt32, errorCode: UInt16, statusVariables: [UInt8],
        database: String, statement: [UInt8], wasCompressed: Bool = false
    ) {
        self.threadID = threadID
        self.executionTime = executionTime
        self.errorCode = errorCode
        self.statusVariables = statusVariables
        self.database = database
        self.statement = statement
        self.wasCompressed = wasCompressed
    }

    /// The statement as text, invalid UTF-8 replaced (for messages, not for replay).
    public var statementText: String { String(decoding: statement, as: UTF8.self) }
}

/// A WRITE/UPDATE/DELETE rows event before interpretation: which columns each image
/// carries and the packed row images, which only a TABLE_MAP can decode.
public struct RowsEvent: Hashable, Sendable {
    public enum Kind: Hashable, Sendable { case write, update, delete }

    public var kind: Kind
    public var tableID: UInt64
    /// `STMT_END_F` (0x0001) and the check-suppression flags.
    public var flags: UInt16
    public var columnCount: Int
    /// Columns present in the before image (update, delete) or the row (write).
    public var columnsPresent: [Bool]
    /// Columns present in the after image (update only).
    public var columnsPresentAfter: [Bool]?
    /// The packed images, inflated if the event was compressed.
    public var rowData: [UInt8]
    public var wasCompressed: Bool

    public static let statementEndFlag: UInt16 = 0x0001

    public init(
        kind: Kind, tableID: UInt64, flags: UInt16, columnCount: Int, columnsPresent: [Bool],
        columnsPresentAfter: [Bool]?, rowData: [UInt8], wasCompressed: Bool = false
    ) {
        self.kind = kind
        self.tableID = tableID
        self.flags = flags
        self.columnCount = columnCount
        self.columnsPresent = columnsPresent
        self.columnsPresentAfter = columnsPresentAfter
        self.rowData = rowData
        self.wasCompressed = wasCompressed
    }

    public var isStatementEnd: Bool { flags & Self.statementEndFlag != 0 }
}
