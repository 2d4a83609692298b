import Glibc
import TandemCore

/// Parses one raw binlog event (header, body, checksum trailer) into a `BinlogEvent`.
///
/// Pure and total: every length and count is checked against the bytes actually present
/// before it is used, so truncated or hostile input throws a `BinlogParseError` instead of
/// trapping, and compressed payloads are inflated only up to the size they declare (itself
/// capped by `maximumDecompressedSize`).
///
/// The parser carries the one piece of state the format needs: the FORMAT_DESCRIPTION in
/// force, which says whether events end in a CRC-32 and how long each type's post-header
/// is. Parsing a FORMAT_DESCRIPTION adopts it. Before the first one, `checksum` is what the
/// caller says: reading a file, the FORMAT_DESCRIPTION comes first anyway; on a replication
/// connection the server sends the fake ROTATE before it, with the checksum the client
/// asked for (`@master_binlog_checksum`).
public struct BinlogEventParser: Sendable {
    /// The FORMAT_DESCRIPTION in force, nil before the first one.
    public private(set) var format: FormatDescriptionEvent?
    /// The checksum algorithm applied to events other than FORMAT_DESCRIPTION (which says
    /// its own).
    public var checksum: BinlogChecksum
    /// Upper bound on the size a compressed event may declare (MariaDB's own bound is
    /// `max_allowed_packet`, at most 1 GiB).
    public var maximumDecompressedSize: Int
    /// The last TABLE_MAP body parsed for each table id, with its result. Every transaction
    /// repeats the TABLE_MAP of each table it writes, with full optional metadata (names,
    /// keys, charsets, ENUM values): parsing it each time took a tenth of the shipper's CPU
    /// under sysbench. A body identical byte for byte to the cached one parses to the same
    /// event under the same FORMAT_DESCRIPTION, so the cached event is returned.
    private var tableMaps: [UInt64: (body: [UInt8], event: TableMapEvent)] = [:]
    static let tableMapCacheLimit = 1024

    public init(checksum: BinlogChecksum = .crc32, maximumDecompressedSize: Int = 1 << 30) {
        self.checksum = checksum
        self.maximumDecompressedSize = maximumDecompressedSize
    }

    /// Makes a FORMAT_DESCRIPTION the one in force (parsing one does this itself).
    public mutating func adopt(_ description: FormatDescriptionEvent) {
        format = description
        checksum = description.checksum
        tableMaps.removeAll()
    }

    /// Reads only the common header; `bytes` may be longer than the event.
    public static func header(_ bytes: UnsafeBufferPointer<UInt8>) throws(BinlogParseError) -> BinlogEventHeader {
        guard bytes.count >= BinlogEventHeader.length else { throw .truncatedHeader(length: bytes.count) }
        var r = ByteReader(bytes, event: bytes[4])
        return BinlogEventHeader(
            timestamp: try r.u32("timestamp"), typeCode: try r.u8("type"), serverID: try r.u32("server id"),
            eventSize: try r.u32("event size"), logPosition: try r.u32("log position"), flags: try r.u16("flags"))
    }

    public mutating func parse(_ bytes: [UInt8]) throws(BinlogParseError) -> BinlogEvent {
        try bytes.withUnsafeBufferPointer { (buffer) throws(BinlogParseError) -> BinlogEvent in try parse(buffer) }
    }

    public mutating func parse(_ bytes: ArraySlice<UInt8>) throws(BinlogParseError) -> BinlogEvent {
        try bytes.withUnsafeBufferPointer { (buffer) throws(BinlogParseError) -> BinlogEvent in try parse(buffer) }
    }

    /// Parses exactly one event: `bytes` must be the whole event and nothing more.
    public mutating func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws(BinlogParseError) -> BinlogEvent {
        let header = try Self.header(bytes)
        let type = header.typeCode
        guard UInt64(header.eventSize) == UInt64(bytes.count) else {
            throw .eventSizeMismatch(type: type, declared: header.eventSize, actual: bytes.count)
        }
        if type == BinlogEventType.formatDescription {
            let description = try Self.formatDescription(bytes)
            adopt(description)
            return BinlogEvent(header: header, body: .formatDescription(description))
        }
        var end = bytes.count
        if checksum == .crc32 {
            guard bytes.count >= BinlogEventHeader.length + 4 else {
                throw .truncated(event: type, field: "checksum", offset: BinlogEventHeader.length, needed: 4)
            }
            end -= 4
            let stored =
                UInt32(bytes[end]) | UInt32(bytes[end + 1]) << 8 | UInt32(bytes[end + 2]) << 16
                | UInt32(bytes[end + 3]) << 24
            let computed = Checksums.crc32(UnsafeBufferPointer(rebasing: bytes[0..<end]))
            guard stored == computed else { throw .checksumMismatch(type: type, stored: stored, computed: computed) }
        }
        let body = UnsafeBufferPointer(rebasing: bytes[BinlogEventHeader.length..<end])
        if type == BinlogEventType.tableMap, let cached = cachedTableMap(body) {
            return BinlogEvent(header: header, body: .tableMap(cached))
        }
        var r = ByteReader(body, event: type, base: BinlogEventHeader.length)
        let parsed = try self.body(type: type, reader: &r)
        guard r.isAtEnd else { throw .trailingBytes(event: type, count: r.remaining) }
        if case .tableMap(let map) = parsed {
            if tableMaps.count >= Self.tableMapCacheLimit { tableMaps.removeAll(keepingCapacity: true) }
            tableMaps[map.tableID] = (Array(body), map)
        }
        return BinlogEvent(header: header, body: parsed)
    }

    /// The cached event for a TABLE_MAP body identical to the last one of its table id.
    private func cachedTableMap(_ body: UnsafeBufferPointer<UInt8>) -> TableMapEvent? {
        // The table id leads the post-header: 6 bytes (4 with the old 6-byte post-header).
        let idLength = postHeaderLength(BinlogEventType.tableMap, default: 8) == 6 ? 4 : 6
        guard body.count >= idLength else { return nil }
        var id: UInt64 = 0
        for index in 0..<idLength { id |= UInt64(body[index]) << (8 * UInt64(index)) }
        guard let cached = tableMaps[id], cached.body.count == body.count else { return nil }
        let same = cached.body.withUnsafeBufferPointer { stored in
            memcmp(stored.baseAddress!, body.baseAddress!, body.count) == 0
        }
        return same ? cached.event : nil
    }

    // MARK: - Bodies

    private func postHeaderLength(_ type: UInt8, default value: Int) -> Int {
        format?.postHeaderLength(of: type) ?? value
    }

    private func body(type: UInt8, reader r: inout ByteReader) throws(BinlogParseError) -> BinlogEventBody {
        switch type {
        case BinlogEventType.rotate:
            let postHeader = postHeaderLength(type, default: 8)
            guard postHeader >= 8 else { throw .postHeaderTooShort(event: type, length: postHeader, minimum: 8) }
            let position = try r.u64("position")
            try r.skip(postHeader - 8, "post-header")
            return .rotate(RotateEvent(position: position, fileName: try r.utf8(r.remaining, "file name")))
        case BinlogEventType.query, BinlogEventType.queryCompressed:
            return .query(try query(type: type, reader: &r))
        case BinlogEventType.xid:
            return .xid(try r.u64("xid"))
        case BinlogEventType.gtid:
            return .gtid(try Self.gtid(&r))
        case BinlogEventType.gtidList:
            let word = try r.u32("gtid count")
            let count = Int(word & 0x0FFF_FFFF)
            try r.need(count * 16, "gtids")
            var gtids: [MariaDBGTID] = []
            gtids.reserveCapacity(count)
            for _ in 0..<count {
                let domain = try r.u32("domain")
                let server = try r.u32("server id")
                gtids.append(MariaDBGTID(domain: domain, server: server, sequence: try r.u64("sequence")))
            }
            // The server pads an empty list; its own reader ignores what follows the entries.
            _ = r.rest()
            return .gtidList(GTIDListEvent(gtids: gtids, flags: UInt8(word >> 28)))
        case BinlogEventType.binlogCheckpoint:
            let length = try r.u32("file name length")
            return .binlogCheckpoint(fileName: try r.utf8(Int(min(length, UInt32(Int32.max))), "file name"))
        case BinlogEventType.heartbeat:
            return .heartbeat(fileName: try r.utf8(r.remaining, "file name"))
        case BinlogEventType.annotateRows:
            return .annotateRows(statement: r.rest())
        case BinlogEventType.tableMap:
            return .tableMap(try tableMap(&r))
        case BinlogEventType.writeRowsV1, BinlogEventType.updateRowsV1, BinlogEventType.deleteRowsV1,
            BinlogEventType.writeRowsV2, BinlogEventType.updateRowsV2, BinlogEventType.deleteRowsV2,
            BinlogEventType.writeRowsCompressedV1, BinlogEventType.updateRowsCompressedV1,
            BinlogEventType.deleteRowsCompressedV1, BinlogEventType.writeRowsCompressedV2,
            BinlogEventType.updateRowsCompressedV2, BinlogEventType.deleteRowsCompressedV2:
            return .rows(try rows(type: type, reader: &r))
        default:
            _ = r.rest()
            return .other(type: type)
        }
    }

    /// FORMAT_DESCRIPTION: version 4, 50-byte server version, create time, header length,
    /// post-header lengths, then (checksum-aware servers) the algorithm byte and a 4-byte
    /// checksum that is always present, zero-filled when the algorithm is OFF.
    static func formatDescription(_ bytes: UnsafeBufferPointer<UInt8>) throws(BinlogParseError)
        -> FormatDescriptionEvent
    {
        let type = BinlogEventType.formatDescription
        var r = ByteReader(
            UnsafeBufferPointer(rebasing: bytes[BinlogEventHeader.length...]), event: type,
            base: BinlogEventHeader.length)
        let version = try r.u16("binlog version")
        guard version == 4 else { throw .unsupportedBinlogVersion(version) }
        let versionBytes = try r.take(50, "server version")
        let versionText = versionBytes.prefix { $0 != 0 }
        guard let serverVersion = String(validating: versionText, as: UTF8.self) else {
            throw .invalidUTF8(event: type, field: "server version", offset: BinlogEventHeader.length + 2)
        }
        let created = try r.u32("create timestamp")
        let headerLength = try r.u8("header length")
        guard headerLength == UInt8(BinlogEventHeader.length) else { throw .unsupportedHeaderLength(headerLength) }
        var checksum = BinlogChecksum.none
        var arrayLength = r.remaining
        if isChecksumAware(serverVersion) {
            try r.need(5, "checksum algorithm and checksum")
            arrayLength -= 5
            let algorithm = bytes[bytes.count - 5]
            switch algorithm {
            case 0: checksum = .none
            case 1:
                checksum = .crc32
                let end = bytes.count - 4
                let stored =
                    UInt32(bytes[end]) | UInt32(bytes[end + 1]) << 8 | UInt32(bytes[end + 2]) << 16
                    | UInt32(bytes[end + 3]) << 24
                // Computed with LOG_EVENT_BINLOG_IN_USE_F clear: the flag changes after the fact.
                var copy = Array(bytes[0..<end])
                copy[17] &= ~UInt8(BinlogEventHeader.binlogInUseFlag)
                let computed = Checksums.crc32(copy)
                guard stored == computed else {
                    throw .checksumMismatch(type: type, stored: stored, computed: computed)
                }
            default:
                throw .unsupportedChecksumAlgorithm(algorithm)
            }
        }
        let lengths = try r.take(arrayLength, "post-header lengths")
        return FormatDescriptionEvent(
            binlogVersion: version, serverVersion: serverVersion, createTimestamp: created,
            headerLength: headerLength, postHeaderLengths: lengths, checksum: checksum)
    }

    /// Whether the server that wrote the FORMAT_DESCRIPTION knows binlog checksums (and so
    /// appends the algorithm byte): MariaDB 5.3 and MySQL 5.6.1 on. An unreadable version is
    /// taken as a modern server.
    static func isChecksumAware(_ version: String) -> Bool {
        let numbers = version.prefix { $0.isNumber || $0 == "." }.split(separator: ".").compactMap { Int($0) }
        guard numbers.count >= 3 else { return true }
        let triple = (numbers[0], numbers[1], numbers[2])
        return version.contains("MariaDB") ? triple >= (5, 3, 0) : triple >= (5, 6, 1)
    }

    private func query(type: UInt8, reader r: inout ByteReader) throws(BinlogParseError) -> QueryEvent {
        let postHeader = postHeaderLength(type, default: 13)
        guard postHeader >= 13 else { throw .postHeaderTooShort(event: type, length: postHeader, minimum: 13) }
        let thread = try r.u32("thread id")
        let time = try r.u32("execution time")
        let databaseLength = Int(try r.u8("database length"))
        let error = try r.u16("error code")
        let statusLength = Int(try r.u16("status variables length"))
        try r.skip(postHeader - 13, "post-header")
        let status = try r.take(statusLength, "status variables")
        let database = try r.utf8(databaseLength, "database")
        try r.expectZero("database terminator")
        let compressed = type == BinlogEventType.queryCompressed
        let statement = compressed ? try decompress(&r) : r.rest()
        return QueryEvent(
            threadID: thread, executionTime: time, errorCode: error, statusVariables: status,
            database: database, statement: statement, wasCompressed: compressed)
    }

    /// GTID: sequence, domain, flags2, then what the flags announce. MariaDB pads the
    /// event to 19 body bytes and later versions append more `flags_extra` data; like the
    /// server's own reader, anything after the known fields is ignored.
    static func gtid(_ r: inout ByteReader) throws(BinlogParseError) -> GTIDEvent {
        var event = GTIDEvent(sequence: try r.u64("sequence"), domain: try r.u32("domain"), flags: try r.u8("flags"))
        if event.flags & GTIDEvent.flagGroupCommitID != 0 { event.commitID = try r.u64("commit id") }
        if event.isXA {
            let formatID = try r.u32("XA format id")
            let gtridLength = Int(try r.u8("XA gtrid length"))
            let bqualLength = Int(try r.u8("XA bqual length"))
            guard gtridLength <= 64, bqualLength <= 64 else {
                throw .invalidValue(
                    event: r.event, field: "XA id", offset: r.base + r.offset - 2,
                    reason: "gtrid \(gtridLength) / bqual \(bqualLength) bytes, at most 64 each")
            }
            event.xa = GTIDEvent.XAID(
                formatID: formatID, gtrid: try r.take(gtridLength, "XA gtrid"),
                bqual: try r.take(bqualLength, "XA bqual"))
        }
        if !r.isAtEnd {
            event.extraFlags = try r.u8("extra flags")
            if event.extraFlags & GTIDEvent.extraFlagMultiEngine != 0 { event.extraEngines = try r.u8("extra engines") }
            if event.extraFlags & (GTIDEvent.extraFlagCommitAlter | GTIDEvent.extraFlagRollbackAlter) != 0 {
                event.startAlterSequence = try r.u64("start alter sequence")
            }
        }
        _ = r.rest()
        return event
    }

    /// Table id and flags: a 4-byte id when the server declared a 6-byte post-header (old
    /// servers), 6 bytes otherwise.
    private func tableIDAndFlags(type: UInt8, minimum: Int, reader r: inout ByteReader) throws(BinlogParseError)
        -> (id: UInt64, flags: UInt16, extra: Int)
    {
        let postHeader = postHeaderLength(type, default: minimum)
        if postHeader == 6 {
            return (UInt64(try r.u32("table id")), try r.u16("flags"), 0)
        }
        guard postHeader >= minimum else {
            throw .postHeaderTooShort(event: type, length: postHeader, minimum: minimum)
        }
        return (try r.uint(6, "table id"), try r.u16("flags"), postHeader - 8)
    }

    private func tableMap(_ r: inout ByteReader) throws(BinlogParseError) -> TableMapEvent {
        let (tableID, flags, extra) = try tableIDAndFlags(type: BinlogEventType.tableMap, minimum: 8, reader: &r)
        try r.skip(extra, "post-header")
        let schemaLength = Int(try r.u8("database length"))
        let schema = try r.utf8(schemaLength, "database")
        try r.expectZero("database terminator")
        let tableLength = Int(try r.u8("table length"))
        let table = try r.utf8(tableLength, "table")
        try r.expectZero("table terminator")
        let count = try r.packedCount("column count")
        let types = try r.take(count, "column types")
        let metadataLength = try r.packedCount("metadata length")
        var metadata: [UInt16] = []
        metadata.reserveCapacity(count)
        var m = try r.sub(metadataLength, "metadata")
        for (column, type) in types.enumerated() {
            guard let size = TableMapEvent.metadataSize(of: type) else {
                throw .unknownColumnType(column: column, type: type)
            }
            guard size <= m.remaining else {
                throw .metadataLengthMismatch(declared: metadataLength, used: m.offset + size)
            }
            metadata.append(UInt16(try m.uint(size, "column metadata")))
        }
        guard m.isAtEnd else { throw .metadataLengthMismatch(declared: metadataLength, used: m.offset) }
        let nullable = try r.bitmap(count, "null bitmap")
        let optional = try Self.optionalMetadata(&r)
        if let names = optional.columnNames, names.count != count {
            throw .invalidValue(
                event: r.event, field: "column names", offset: r.base + r.offset,
                reason: "\(names.count) names for \(count) columns")
        }
        return TableMapEvent(
            tableID: tableID, flags: flags, schema: schema, table: table, columnTypes: types,
            columnMetadata: metadata, nullable: nullable, optional: optional)
    }

    static func optionalMetadata(_ r: inout ByteReader) throws(BinlogParseError) -> TableMapOptionalMetadata {
        var result = TableMapOptionalMetadata()
        while !r.isAtEnd {
            let fieldType = try r.u8("optional metadata type")
            let length = try r.packedCount("optional metadata length")
            var f = try r.sub(length, "optional metadata field \(fieldType)")
            switch fieldType {
            case 1:
                result.unsignedBitmap = f.rest()
            case 2, 10:
                let value = try collationsWithDefault(&f)
                if fieldType == 2 { result.characterCollations = value } else { result.enumAndSetCollations = value }
            case 3, 11:
                var list: [UInt32] = []
                while !f.isAtEnd { list.append(try f.collation("column collation")) }
                if fieldType == 3 {
                    result.characterCollations = .perColumn(list)
                } else {
                    result.enumAndSetCollations = .perColumn(list)
                }
            case 4:
                var names: [String] = []
                while !f.isAtEnd { names.append(try f.utf8(try f.packedCount("column name length"), "column name")) }
                result.columnNames = names
            case 5, 6:
                var columns: [[[UInt8]]] = []
                while !f.isAtEnd {
                    let count = try f.packedCount("member count")
                    var members: [[UInt8]] = []
                    members.reserveCapacity(count)
                    for _ in 0..<count { members.append(try f.take(try f.packedCount("member length"), "member")) }
                    columns.append(members)
                }
                if fieldType == 5 { result.setMembers = columns } else { result.enumMembers = columns }
            case 7:
                var list: [UInt32] = []
                while !f.isAtEnd { list.append(try f.collation("geometry type")) }
                result.geometryTypes = list
            case 8, 9:
                var parts: [TableMapOptionalMetadata.KeyPart] = []
                while !f.isAtEnd {
                    let column = try f.smallInteger("key column")
                    parts.append(.init(column: column, prefix: fieldType == 9 ? try f.smallInteger("key prefix") : 0))
                }
                result.primaryKey = parts
            default:
                result.unknownFields.append(fieldType)
                _ = f.rest()
            }
        }
        return result
    }

    private static func collationsWithDefault(_ f: inout ByteReader) throws(BinlogParseError)
        -> TableMapOptionalMetadata.Collations
    {
        let defaultCollation = try f.collation("default collation")
        var exceptions: [UInt32: UInt32] = [:]
        while !f.isAtEnd {
            let index = try f.collation("column index")
            exceptions[index] = try f.collation("column collation")
        }
        return .defaultWithExceptions(default: defaultCollation, exceptions: exceptions)
    }

    private func rows(type: UInt8, reader r: inout ByteReader) throws(BinlogParseError) -> RowsEvent {
        let kind: RowsEvent.Kind
        var version2 = false
        var compressed = false
        switch type {
        case BinlogEventType.writeRowsV1: kind = .write
        case BinlogEventType.updateRowsV1: kind = .update
        case BinlogEventType.deleteRowsV1: kind = .delete
        case BinlogEventType.writeRowsV2: kind = .write; version2 = true
        case BinlogEventType.updateRowsV2: kind = .update; version2 = true
        case BinlogEventType.deleteRowsV2: kind = .delete; version2 = true
        case BinlogEventType.writeRowsCompressedV1: kind = .write; compressed = true
        case BinlogEventType.updateRowsCompressedV1: kind = .update; compressed = true
        case BinlogEventType.deleteRowsCompressedV1: kind = .delete; compressed = true
        case BinlogEventType.writeRowsCompressedV2: kind = .write; version2 = true; compressed = true
        case BinlogEventType.updateRowsCompressedV2: kind = .update; version2 = true; compressed = true
        default: kind = .delete; version2 = true; compressed = true
        }
        let (tableID, flags, extra) = try tableIDAndFlags(type: type, minimum: version2 ? 10 : 8, reader: &r)
        if version2 {
            // The extra-data length counts its own two bytes.
            let extraLength = Int(try r.u16("extra data length"))
            guard extraLength >= 2 else {
                throw .invalidValue(
                    event: type, field: "extra data length", offset: r.base + r.offset - 2,
                    reason: "\(extraLength) is below its own 2 bytes")
            }
            try r.skip(max(extra - 2, 0), "post-header")
            try r.skip(extraLength - 2, "extra data")
        } else {
            try r.skip(extra, "post-header")
        }
        let at = r.offset
        let count64 = try r.packedInteger("column count")
        guard count64 <= UInt64(r.remaining) * 8 else {
            throw .truncated(
                event: type, field: "columns bitmap", offset: r.base + at, needed: Int(min(count64, 1 << 40) / 8))
        }
        let count = Int(count64)
        let present = try r.bitmap(count, "columns bitmap")
        let presentAfter = kind == .update ? try r.bitmap(count, "after-image columns bitmap") : nil
        let data = compressed ? try decompress(&r) : r.rest()
        return RowsEvent(
            kind: kind, tableID: tableID, flags: flags, columnCount: count, columnsPresent: present,
            columnsPresentAfter: presentAfter, rowData: data, wasCompressed: compressed)
    }

    /// MariaDB's compressed payload: one header byte (bit 7 set, algorithm in bits 4–6,
    /// always 0 = zlib, the count of length bytes in bits 0–2), the uncompressed length
    /// big-endian in that many bytes, then a zlib stream. Takes the rest of the body.
    private func decompress(_ r: inout ByteReader) throws(BinlogParseError) -> [UInt8] {
        let type = r.event
        let header = try r.u8("compression header")
        let lengthBytes = Int(header & 0x07)
        guard header & 0x80 != 0, header & 0x70 == 0, (1...4).contains(lengthBytes) else {
            throw .badCompressionHeader(event: type, byte: header)
        }
        let declared = try r.uintBE(lengthBytes, "uncompressed length")
        guard declared <= UInt64(maximumDecompressedSize) else {
            throw .decompressedSizeTooLarge(event: type, declared: declared, limit: maximumDecompressedSize)
        }
        let input = UnsafeBufferPointer(rebasing: r.bytes[r.offset...])
        r.offset = r.bytes.count
        do {
            return try Inflate.zlib(input, declaredLength: Int(declared))
        } catch {
            throw .decompression(event: type, error)
        }
    }
}

extension ByteReader {
    /// A reader over the next `n` bytes, which it consumes here.
    mutating func sub(_ n: Int, _ field: String) throws(BinlogParseError) -> ByteReader {
        try need(n, field)
        let reader = ByteReader(
            UnsafeBufferPointer(rebasing: bytes[offset..<(offset + n)]), event: event, base: base + offset)
        offset += n
        return reader
    }

    /// A bitmap of `count` bits, least significant bit of each byte first.
    mutating func bitmap(_ count: Int, _ field: String) throws(BinlogParseError) -> [Bool] {
        let size = (count + 7) / 8
        try need(size, field)
        var bits = [Bool](repeating: false, count: count)
        for i in 0..<count { bits[i] = bytes[offset + i / 8] & (1 << UInt8(i % 8)) != 0 }
        offset += size
        return bits
    }

    /// A length-encoded integer that must fit 32 bits (collations, indexes, types).
    mutating func collation(_ field: String) throws(BinlogParseError) -> UInt32 {
        let at = offset
        let value = try packedInteger(field)
        guard value <= UInt64(UInt32.max) else {
            throw .invalidValue(event: event, field: field, offset: base + at, reason: "\(value) does not fit 32 bits")
        }
        return UInt32(value)
    }

    mutating func smallInteger(_ field: String) throws(BinlogParseError) -> Int { Int(try collation(field)) }
}
