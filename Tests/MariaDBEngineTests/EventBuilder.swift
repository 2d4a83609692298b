@testable import MariaDBEngine

/// Builds binlog event bytes by hand, little-endian, for parser and decoder tests.
struct Bytes {
    var bytes: [UInt8] = []

    func u8(_ v: UInt8) -> Bytes { var c = self; c.bytes.append(v); return c }
    func u16(_ v: UInt16) -> Bytes { le(UInt64(v), 2) }
    func u32(_ v: UInt32) -> Bytes { le(UInt64(v), 4) }
    func u48(_ v: UInt64) -> Bytes { le(v, 6) }
    func u64(_ v: UInt64) -> Bytes { le(v, 8) }
    func le(_ v: UInt64, _ width: Int) -> Bytes {
        var c = self
        for i in 0..<width { c.bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) }
        return c
    }
    func raw(_ b: [UInt8]) -> Bytes { var c = self; c.bytes += b; return c }
    func text(_ s: String) -> Bytes { raw(Array(s.utf8)) }
    /// A length-encoded integer.
    func packed(_ v: UInt64) -> Bytes {
        switch v {
        case 0..<251: u8(UInt8(v))
        case 251..<65536: u8(252).le(v, 2)
        case 65536..<(1 << 24): u8(253).le(v, 3)
        default: u8(254).le(v, 8)
        }
    }
    /// A length-encoded string.
    func lstring(_ s: String) -> Bytes { packed(UInt64(s.utf8.count)).text(s) }
    /// One optional-metadata TLV field.
    func tlv(_ type: UInt8, _ value: Bytes) -> Bytes { u8(type).packed(UInt64(value.bytes.count)).raw(value.bytes) }
}

enum Events {
    static let serverID: UInt32 = 77
    static let time: UInt32 = 1_700_000_000

    /// Header + body (+ CRC-32 trailer), with the size filled in.
    static func event(
        _ type: UInt8, _ body: [UInt8], checksum: Bool = true, serverID: UInt32 = serverID,
        timestamp: UInt32 = time, logPosition: UInt32 = 0, flags: UInt16 = 0
    ) -> [UInt8] {
        let size = UInt32(19 + body.count + (checksum ? 4 : 0))
        var bytes = Bytes().u32(timestamp).u8(type).u32(serverID).u32(size).u32(logPosition).u16(flags).raw(body).bytes
        if checksum { bytes = Bytes(bytes: bytes).u32(Checksums.crc32(bytes)).bytes }
        return bytes
    }

    /// Recomputes size and CRC after a test edited an event.
    static func resealed(_ event: [UInt8], checksum: Bool = true) -> [UInt8] {
        let body = Array(event[19..<(event.count - (checksum ? 4 : 0))])
        let h = Array(event[0..<19])
        let flags = UInt16(h[17]) | UInt16(h[18]) << 8
        let position = UInt32(h[13]) | UInt32(h[14]) << 8 | UInt32(h[15]) << 16 | UInt32(h[16]) << 24
        return Self.event(h[4], body, checksum: checksum, logPosition: position, flags: flags)
    }

    /// MariaDB 10.11's post-header lengths (what its FORMAT_DESCRIPTION declares).
    static let mariaDBPostHeaders: [UInt8] = {
        var lengths = [UInt8](repeating: 0, count: 171)
        let known: [Int: UInt8] = [
            1: 56, 2: 13, 4: 8, 6: 18, 8: 4, 9: 4, 10: 4, 11: 4, 12: 18, 15: 228, 17: 4, 18: 26,
            19: 8, 23: 8, 24: 8, 25: 8, 26: 2, 30: 10, 31: 10, 32: 10, 161: 4, 162: 19, 163: 4,
            164: 10, 165: 13, 166: 8, 167: 8, 168: 8, 169: 10, 170: 10, 171: 10,
        ]
        for (type, length) in known { lengths[type - 1] = length }
        return lengths
    }()

    static func formatDescription(
        algorithm: UInt8 = 1, version: String = "10.11.19-MariaDB-log",
        postHeaders: [UInt8] = mariaDBPostHeaders, flags: UInt16 = 0,
        binlogVersion: UInt16 = 4, headerLength: UInt8 = 19
    ) -> [UInt8] {
        var versionBytes = Array(version.utf8)
        versionBytes += [UInt8](repeating: 0, count: 50 - versionBytes.count)
        let body = Bytes().u16(binlogVersion).raw(versionBytes).u32(time).u8(headerLength).raw(postHeaders).u8(
            algorithm
        )
        .bytes
        var bytes = event(BinlogEventType.formatDescription, body, checksum: false, flags: flags)
        // The trailer is always there; the CRC is over the event with the in-use flag clear.
        let size = UInt32(bytes.count + 4)
        bytes.replaceSubrange(9..<13, with: Bytes().u32(size).bytes)
        var copy = bytes
        copy[17] &= 0xFE
        let crc = algorithm == 1 ? Checksums.crc32(copy) : 0
        return bytes + Bytes().u32(crc).bytes
    }

    static func gtid(
        _ sequence: UInt64, domain: UInt32 = 0, flags: UInt8 = GTIDEvent.flagTransactional,
        serverID: UInt32 = serverID
    ) -> [UInt8] {
        var body = Bytes().u64(sequence).u32(domain).u8(flags)
        body = flags & GTIDEvent.flagGroupCommitID != 0 ? body.u64(99) : body.raw([0, 0, 0, 0, 0, 0])
        return event(BinlogEventType.gtid, body.bytes, serverID: serverID)
    }

    static func query(_ statement: String, database: String = "db", timestamp: UInt32 = time) -> [UInt8] {
        let status: [UInt8] = [0x00, 0, 0, 0, 0]  // Q_FLAGS2_CODE = 0
        let body = Bytes().u32(42).u32(0).u8(UInt8(database.utf8.count)).u16(0).u16(UInt16(status.count))
            .raw(status).text(database).u8(0).text(statement)
        return event(BinlogEventType.query, body.bytes, timestamp: timestamp)
    }

    static func xid(_ id: UInt64 = 1, timestamp: UInt32 = time) -> [UInt8] {
        event(BinlogEventType.xid, Bytes().u64(id).bytes, timestamp: timestamp)
    }

    static func rotate(_ file: String, position: UInt64 = 4, flags: UInt16 = 0, logPosition: UInt32 = 0) -> [UInt8] {
        event(BinlogEventType.rotate, Bytes().u64(position).text(file).bytes, logPosition: logPosition, flags: flags)
    }

    /// A table `db.t (id INT PRIMARY KEY, name VARCHAR(10) utf8mb4)` under `tableID` (other
    /// schema, table and second column names on request).
    static func tableMap(
        _ tableID: UInt64 = 5, schema: String = "db", table: String = "t", second: String = "name"
    ) -> [UInt8] {
        let optional = Bytes().tlv(1, Bytes().u8(0)).tlv(2, Bytes().packed(45)).tlv(
            4, Bytes().lstring("id").lstring(second)
        )
        .tlv(8, Bytes().packed(0))
        let body = Bytes().u48(tableID).u16(1).u8(UInt8(schema.utf8.count)).text(schema).u8(0)
            .u8(UInt8(table.utf8.count)).text(table).u8(0)
            .packed(2).raw([3, 15]).packed(2).u16(40).u8(0b10).raw(optional.bytes)
        return event(BinlogEventType.tableMap, body.bytes)
    }

    /// One WRITE_ROWS_V1 row `(id, name)` for the table of `tableMap`.
    static func writeRow(_ tableID: UInt64 = 5, id: Int32, name: String, flags: UInt16 = 1) -> [UInt8] {
        let body = Bytes().u48(tableID).u16(flags).packed(2).u8(0b11).u8(0).u32(UInt32(bitPattern: id))
            .u8(UInt8(name.utf8.count)).text(name)
        return event(BinlogEventType.writeRowsV1, body.bytes)
    }
}
