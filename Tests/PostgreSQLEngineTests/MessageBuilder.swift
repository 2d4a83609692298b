import PostgreSQLEngine

/// Builds pgoutput messages byte by byte, big-endian, the way the server writes them,
/// so unit tests do not depend on the parser they test.
struct MessageBuilder {
    var bytes: [UInt8]

    init(_ type: Character) { bytes = [type.asciiValue!] }

    func u8(_ v: UInt8) -> Self { var c = self; c.bytes.append(v); return c }
    func char(_ v: Character) -> Self { u8(v.asciiValue!) }
    func u16(_ v: UInt16) -> Self { var c = self; c.bytes += [UInt8(v >> 8), UInt8(v & 0xFF)]; return c }
    func u32(_ v: UInt32) -> Self {
        var c = self
        c.bytes += (0..<4).reversed().map { UInt8(truncatingIfNeeded: v >> (8 * UInt32($0))) }
        return c
    }
    func i32(_ v: Int32) -> Self { u32(UInt32(bitPattern: v)) }
    func u64(_ v: UInt64) -> Self {
        var c = self
        c.bytes += (0..<8).reversed().map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) }
        return c
    }
    func i64(_ v: Int64) -> Self { u64(UInt64(bitPattern: v)) }
    func string(_ s: String) -> Self { var c = self; c.bytes += Array(s.utf8) + [0]; return c }
    func raw(_ b: [UInt8]) -> Self { var c = self; c.bytes += b; return c }

    /// A TupleData block: `.null` → 'n', `.unchanged` → 'u', `.text` → 't', `.binary` → 'b'.
    enum Col { case null, unchanged, text(String), binary([UInt8]) }
    func tuple(_ cols: [Col]) -> Self {
        var c = u16(UInt16(cols.count))
        for col in cols {
            switch col {
            case .null: c = c.char("n")
            case .unchanged: c = c.char("u")
            case .text(let s): c = c.char("t").i32(Int32(s.utf8.count)).raw(Array(s.utf8))
            case .binary(let b): c = c.char("b").i32(Int32(b.count)).raw(b)
            }
        }
        return c
    }
}

enum Messages {
    static func begin(final lsn: UInt64, time: Int64 = 0, xid: UInt32 = 700) -> [UInt8] {
        MessageBuilder("B").u64(lsn).i64(time).u32(xid).bytes
    }
    static func commit(lsn: UInt64, end: UInt64, time: Int64 = 0) -> [UInt8] {
        MessageBuilder("C").u8(0).u64(lsn).u64(end).i64(time).bytes
    }
    /// (flags, name, type OID, typmod)
    static func relation(
        _ relid: UInt32, schema: String = "public", name: String, identity: Character = "d",
        columns: [(UInt8, String, UInt32, Int32)], xid: UInt32? = nil
    ) -> [UInt8] {
        var m = MessageBuilder("R")
        if let xid { m = m.u32(xid) }
        m = m.u32(relid).string(schema).string(name).char(identity).u16(UInt16(columns.count))
        for (flags, n, oid, mod) in columns { m = m.u8(flags).string(n).u32(oid).i32(mod) }
        return m.bytes
    }
    static func insert(_ relid: UInt32, _ cols: [MessageBuilder.Col], xid: UInt32? = nil) -> [UInt8] {
        var m = MessageBuilder("I")
        if let xid { m = m.u32(xid) }
        return m.u32(relid).char("N").tuple(cols).bytes
    }
}
