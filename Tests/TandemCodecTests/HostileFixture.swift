import TandemCodec
import TandemCore

/// Raw building blocks for hand-forged frames. Every forged frame is the valid
/// fixture frame with exactly one thing changed, and (unless the change is to the
/// checksum itself) a valid CRC32C, so that it reaches the validation it targets.
enum Fixture {
    static let relation = Relation(
        name: RelationName(schema: "s", name: "t"),
        columns: [
            Column(
                name: "id", type: .integer(bits: 64, signed: true), nativeType: "bigint", nativeTypeID: 20, isKey: true,
                isNullable: false),
            Column(name: "note", type: .text, nativeType: "text", nativeTypeID: 25),
        ])
    static let position = Position.postgresql(LSN(0x1_0000_0100))
    static let time: Int64 = 1_700_000_000_000_000
    static let row: [Value] = [.int(7), .text("x")]

    /// The batch the unmodified fixture frame holds.
    static let batch = Batch(
        stream: StreamID("s1")!, sequence: 1,
        transactions: [
            Transaction(
                commitPosition: position, commitTime: Timestamp(microsecondsSinceEpoch: time),
                changes: [RowChange(relation: relation, kind: .insert, new: row)])
        ])

    static let huge: UInt64 = 1 << 62

    static func varint(_ v: UInt64) -> [UInt8] { Wire { $0.varint(v) }.bytes }
    static func signed(_ v: Int64) -> [UInt8] { Wire { $0.signed(v) }.bytes }
    static func string(_ s: String) -> [UInt8] { Wire { $0.string(s) }.bytes }
    static func raw(_ b: [UInt8]) -> [UInt8] { Wire { $0.rawString(b) }.bytes }
    static func value(_ v: Value) -> [UInt8] { Wire { $0.value(v) }.bytes }
    static func position(_ p: Position) -> [UInt8] { Wire { $0.position(p) }.bytes }
    static func type(_ t: LogicalType) -> [UInt8] { Wire { $0.logicalType(t) }.bytes }

    /// One column: name, type, native type, type id, flags — each raw.
    static func column(
        name: [UInt8] = string("c"), type: [UInt8] = type(.text), native: [UInt8] = string("text"),
        typeID: [UInt8] = varint(25), flags: [UInt8] = [2]
    ) -> [UInt8] {
        name + type + native + typeID + flags
    }

    static func relationBytes(
        schema: [UInt8] = string("s"), name: [UInt8] = string("t"),
        columnCount: [UInt8]? = nil, columns: [[UInt8]]? = nil
    ) -> [UInt8] {
        guard let columns else {
            precondition(columnCount == nil)
            return Wire { $0.relation(relation) }.bytes
        }
        return schema + name + (columnCount ?? varint(UInt64(columns.count))) + columns.joined()
    }

    static func image(_ values: [[UInt8]]) -> [UInt8] { [1] + values.joined() }
    static var rowImage: [UInt8] { image(row.map(value)) }

    /// A change: kind (with truncate options if any), relation index, old, new.
    static func change(
        kind: [UInt8] = [0], relationIndex: [UInt8] = [0], old: [UInt8] = [0],
        new: [UInt8] = rowImage
    ) -> [UInt8] {
        kind + relationIndex + old + new
    }

    static func insert(_ values: [[UInt8]]) -> [UInt8] { change(new: image(values)) }

    static func transaction(
        position: [UInt8] = position(position), time: [UInt8] = signed(time), origin: [UInt8] = [0],
        chunkIndex: [UInt8] = [0], finalFlag: [UInt8] = [1], changeCount: [UInt8]? = nil,
        changes: [[UInt8]] = [change()]
    ) -> [UInt8] {
        position + time + origin + chunkIndex + finalFlag + (changeCount ?? varint(UInt64(changes.count)))
            + changes.joined()
    }

    static func body(
        relationCount: [UInt8]? = nil, relations: [[UInt8]] = [relationBytes()],
        transactions: [[UInt8]] = [transaction()], trailing: [UInt8] = []
    ) -> [UInt8] {
        (relationCount ?? varint(UInt64(relations.count))) + relations.joined() + transactions.joined() + trailing
    }

    /// Header fields as raw bytes, defaulting to what describes the fixture body.
    struct Header {
        var stream = string("s1")
        var sequence = varint(1)
        var first = Fixture.position(Fixture.position)
        var last = Fixture.position(Fixture.position)
        var firstTime = signed(Fixture.time)
        var lastTime = signed(Fixture.time)
        var transactionCount = varint(1)
        var rowCount = varint(1)
        /// nil: the real uncompressed body size.
        var uncompressedSize: [UInt8]? = nil
        var trailing: [UInt8] = []

        func bytes(uncompressedSize size: Int) -> [UInt8] {
            stream + sequence + first + last + firstTime + lastTime + transactionCount + rowCount
                + (uncompressedSize ?? varint(UInt64(size))) + trailing
        }
    }

    static func header(_ edit: (inout Header) -> Void) -> Header {
        var h = Header()
        edit(&h)
        return h
    }

    /// A complete frame with a valid CRC32C.
    static func frame(body: [UInt8] = body(), header: Header = Header(), zstd: Bool = false) -> [UInt8] {
        let stored = zstd ? zstdCompress(body) : body
        return assembleFrame(
            header: header.bytes(uncompressedSize: body.count), body: stored, compression: zstd ? 1 : 0)
    }

    /// A frame whose stored body is given as is (for forged zstd bodies).
    static func frame(storedBody: [UInt8], uncompressedSize: Int, compression: UInt8 = 1) -> [UInt8] {
        assembleFrame(
            header: Header().bytes(uncompressedSize: uncompressedSize), body: storedBody, compression: compression)
    }

    /// Overwrites bytes of a frame and recomputes the CRC (unless `reseal` is false).
    static func patched(_ frame: [UInt8], at offset: Int, _ bytes: [UInt8], reseal: Bool = true) -> [UInt8] {
        var f = frame
        for (i, b) in bytes.enumerated() { f[offset + i] = b }
        return reseal ? resealed(f) : f
    }

    /// A hand-made zstd frame: magic, a frame header without a content size, and
    /// one raw block. Valid zstd, but it does not declare its size.
    static func zstdFrameWithoutContentSize(_ content: [UInt8]) -> [UInt8] {
        let blockHeader = UInt32(1) | UInt32(content.count) << 3  // last block, raw, size
        return [0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x00]  // magic; descriptor: no FCS, not single-segment; window 1 KiB
            + [UInt8(blockHeader & 0xFF), UInt8(blockHeader >> 8 & 0xFF), UInt8(blockHeader >> 16 & 0xFF)] + content
    }

    /// A hand-made single-segment zstd frame declaring `declared` bytes (1-byte
    /// FCS field, so < 256) but holding the raw block `content`.
    static func zstdFrame(declaring declared: UInt8, content: [UInt8]) -> [UInt8] {
        let blockHeader = UInt32(1) | UInt32(content.count) << 3
        return [0x28, 0xB5, 0x2F, 0xFD, 0x20, declared]  // descriptor 0x20: single segment, 1-byte FCS
            + [UInt8(blockHeader & 0xFF), UInt8(blockHeader >> 8 & 0xFF), UInt8(blockHeader >> 16 & 0xFF)] + content
    }
}
