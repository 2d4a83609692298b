import SeededRandom
import TandemCodec
import TandemCore
import Testing

/// One forged frame and the refusal it must meet.
struct HostileCase: Sendable, CustomTestStringConvertible {
    var name: String
    var frame: [UInt8]
    var refusal: Refusal
    /// The fault is in the prefix or header (so `decodeHeader` refuses too).
    var headerLevel: Bool

    var testDescription: String { name }

    init(_ name: String, _ frame: [UInt8], _ refusal: Refusal, headerLevel: Bool = false) {
        self.name = name
        self.frame = frame
        self.refusal = refusal
        self.headerLevel = headerLevel
    }
}

private typealias F = Fixture

enum HostileCorpus {
    static let valid = F.frame()
    static let validZstd = F.frame(zstd: true)
    static let limits = BatchLimits.default

    // MARK: Prefix, lengths, checksum

    static let prefix: [HostileCase] = [
        HostileCase("empty input", [], .exactly(.tooShort(length: 0)), headerLevel: true),
        HostileCase("19 bytes", Array(valid.prefix(19)), .exactly(.tooShort(length: 19)), headerLevel: true),
        HostileCase("magic TNDA", F.patched(valid, at: 0, Array("TNDA".utf8)), .exactly(.badMagic), headerLevel: true),
        HostileCase(
            "magic in lower case", F.patched(valid, at: 0, Array("tndb".utf8)), .exactly(.badMagic), headerLevel: true),
        HostileCase("zero magic", F.patched(valid, at: 0, [0, 0, 0, 0]), .exactly(.badMagic), headerLevel: true),
        HostileCase("20 zero bytes", [UInt8](repeating: 0, count: 20), .exactly(.badMagic), headerLevel: true),
        HostileCase(
            "version 2 (from the future)", F.patched(valid, at: 4, [2, 0]), .exactly(.unsupportedVersion(2)),
            headerLevel: true),
        HostileCase("version 0", F.patched(valid, at: 4, [0, 0]), .exactly(.unsupportedVersion(0)), headerLevel: true),
        HostileCase(
            "version 256 (byte order)", F.patched(valid, at: 4, [0, 1]), .exactly(.unsupportedVersion(256)),
            headerLevel: true),
        HostileCase(
            "version 0xFFFF", F.patched(valid, at: 4, [0xFF, 0xFF]), .exactly(.unsupportedVersion(0xFFFF)),
            headerLevel: true),
        HostileCase(
            "compression code 2", F.patched(valid, at: 6, [2]), .exactly(.unknownCompression(2)), headerLevel: true),
        HostileCase(
            "compression code 0xFF", F.patched(valid, at: 6, [0xFF]), .exactly(.unknownCompression(0xFF)),
            headerLevel: true),
        HostileCase("flags 1", F.patched(valid, at: 7, [1]), .exactly(.unknownFlags(1)), headerLevel: true),
        HostileCase("flags 0x80", F.patched(valid, at: 7, [0x80]), .exactly(.unknownFlags(0x80)), headerLevel: true),
        HostileCase(
            "header length 4 GiB", F.patched(valid, at: 8, [0xFF, 0xFF, 0xFF, 0xFF]),
            .exactly(
                .lengthOutOfBounds(field: "header length", value: 0xFFFF_FFFF, limit: UInt64(limits.maximumHeaderBytes))
            ),
            headerLevel: true),
        HostileCase(
            "body length 4 GiB", F.patched(valid, at: 12, [0xFF, 0xFF, 0xFF, 0xFF]),
            .exactly(
                .lengthOutOfBounds(field: "body length", value: 0xFFFF_FFFF, limit: UInt64(limits.maximumBodyBytes))),
            headerLevel: true),
        HostileCase(
            "20-byte frame declaring 4 GiB header and body",
            assembleFrame(header: [], body: [], headerLength: .max, bodyLength: .max),
            .exactly(
                .lengthOutOfBounds(field: "header length", value: 0xFFFF_FFFF, limit: UInt64(limits.maximumHeaderBytes))
            ),
            headerLevel: true),
        HostileCase(
            "20-byte frame declaring a 4 GiB body",
            assembleFrame(header: [], body: [], bodyLength: .max),
            .exactly(
                .lengthOutOfBounds(field: "body length", value: 0xFFFF_FFFF, limit: UInt64(limits.maximumBodyBytes))),
            headerLevel: true),
        HostileCase(
            "header length one over the limit",
            assembleFrame(header: [], body: [], headerLength: UInt32(limits.maximumHeaderBytes) + 1),
            .lengthOutOfBounds(field: "header length"), headerLevel: true),
        HostileCase(
            "header length at the limit but absent",
            assembleFrame(header: [], body: [], headerLength: UInt32(limits.maximumHeaderBytes)),
            .exactly(.lengthMismatch(expected: UInt64(20 + limits.maximumHeaderBytes), actual: 20)), headerLevel: true),
        HostileCase(
            "header length one too long", F.patched(valid, at: 8, le32(valid.le32(at: 8) + 1)),
            .exactly(.lengthMismatch(expected: UInt64(valid.count + 1), actual: valid.count)), headerLevel: true),
        HostileCase(
            "header length one too short", F.patched(valid, at: 8, le32(valid.le32(at: 8) - 1)),
            .exactly(.lengthMismatch(expected: UInt64(valid.count - 1), actual: valid.count)), headerLevel: true),
        HostileCase(
            "body length one too long", F.patched(valid, at: 12, le32(valid.le32(at: 12) + 1)),
            .exactly(.lengthMismatch(expected: UInt64(valid.count + 1), actual: valid.count)), headerLevel: true),
        HostileCase(
            "body length zero", F.patched(valid, at: 12, le32(0)),
            .exactly(
                .lengthMismatch(expected: UInt64(valid.count - FrameParts(valid).body.count), actual: valid.count)),
            headerLevel: true),
        HostileCase(
            "one byte of trailing garbage", valid + [0],
            .exactly(.lengthMismatch(expected: UInt64(valid.count), actual: valid.count + 1)),
            headerLevel: true),
        HostileCase(
            "a second frame appended", valid + valid,
            .exactly(.lengthMismatch(expected: UInt64(valid.count), actual: 2 * valid.count)), headerLevel: true),
        HostileCase(
            "zeroed checksum", F.patched(valid, at: valid.count - 4, [0, 0, 0, 0], reseal: false), .checksumMismatch,
            headerLevel: true),
        HostileCase(
            "checksum of the wrong bytes",
            assembleFrame(header: FrameParts(valid).header, body: FrameParts(valid).body, crc: crc32c(valid)),
            .checksumMismatch, headerLevel: true),
    ]

    // MARK: Header

    static let header: [HostileCase] = [
        HostileCase(
            "uncompressed size 2 GiB, tiny body", F.frame(header: F.header { $0.uncompressedSize = F.varint(1 << 31) }),
            .exactly(
                .lengthOutOfBounds(
                    field: "uncompressed body size", value: 1 << 31, limit: UInt64(limits.maximumUncompressedBytes))),
            headerLevel: true),
        HostileCase(
            "uncompressed size 2 GiB, tiny zstd body",
            F.frame(header: F.header { $0.uncompressedSize = F.varint(1 << 31) }, zstd: true),
            .exactly(
                .lengthOutOfBounds(
                    field: "uncompressed body size", value: 1 << 31, limit: UInt64(limits.maximumUncompressedBytes))),
            headerLevel: true),
        HostileCase(
            "uncompressed size UInt32.max",
            F.frame(header: F.header { $0.uncompressedSize = F.varint(UInt64(UInt32.max)) }, zstd: true),
            .lengthOutOfBounds(field: "uncompressed body size"), headerLevel: true),
        HostileCase(
            "uncompressed size 2^32", F.frame(header: F.header { $0.uncompressedSize = F.varint(1 << 32) }),
            .malformed(field: "uncompressed body size", reasonContains: "32 bits"), headerLevel: true),
        HostileCase(
            "stream id with a space", F.frame(header: F.header { $0.stream = F.string("bad id") }),
            .malformed(field: "stream id"), headerLevel: true),
        HostileCase(
            "stream id with a slash", F.frame(header: F.header { $0.stream = F.string("../etc") }),
            .malformed(field: "stream id"), headerLevel: true),
        HostileCase(
            "stream id with a NUL", F.frame(header: F.header { $0.stream = F.string("a\u{0}b") }),
            .malformed(field: "stream id"), headerLevel: true),
        HostileCase(
            "stream id with non-ASCII", F.frame(header: F.header { $0.stream = F.string("sité") }),
            .malformed(field: "stream id"), headerLevel: true),
        HostileCase(
            "empty stream id", F.frame(header: F.header { $0.stream = F.string("") }),
            .malformed(field: "stream id"), headerLevel: true),
        HostileCase(
            "65-character stream id",
            F.frame(header: F.header { $0.stream = F.string(String(repeating: "a", count: 65)) }),
            .malformed(field: "stream id"), headerLevel: true),
        HostileCase(
            "stream id not UTF-8", F.frame(header: F.header { $0.stream = F.raw([0x61, 0xFF]) }),
            .malformed(field: "stream id", reasonContains: "UTF-8"), headerLevel: true),
        HostileCase(
            "stream id length 2^62", F.frame(header: F.header { $0.stream = F.varint(F.huge) + Array("s1".utf8) }),
            .lengthOutOfBounds(field: "stream id"), headerLevel: true),
        HostileCase(
            "sequence 0", F.frame(header: F.header { $0.sequence = F.varint(0) }),
            .malformed(field: "batch sequence"), headerLevel: true),
        HostileCase(
            "sequence varint of 11 bytes",
            F.frame(header: F.header { $0.sequence = [UInt8](repeating: 0xFF, count: 10) + [0x01] }),
            .malformed(field: "batch sequence", reasonContains: "64 bits"), headerLevel: true),
        HostileCase(
            "transaction count 0", F.frame(header: F.header { $0.transactionCount = F.varint(0) }),
            .malformed(field: "transaction count"), headerLevel: true),
        HostileCase(
            "transaction count 2^32", F.frame(header: F.header { $0.transactionCount = F.varint(1 << 32) }),
            .malformed(field: "transaction count", reasonContains: "32 bits"), headerLevel: true),
        HostileCase(
            "unknown position tag in the header", F.frame(header: F.header { $0.first = [9] }),
            .malformed(field: "position"), headerLevel: true),
        HostileCase(
            "header ends inside the LSN",
            F.frame(
                header: F.header {
                    $0.first = [1, 0, 0]; $0.last = []; $0.firstTime = []; $0.lastTime = []
                    $0.transactionCount = []; $0.rowCount = []; $0.uncompressedSize = []
                }), .truncated(field: "LSN"), headerLevel: true),
        HostileCase(
            "a byte after the header fields", F.frame(header: F.header { $0.trailing = [0] }),
            .malformed(field: "batch header"), headerLevel: true),
    ]

    // MARK: Body size and compression

    static let compression: [HostileCase] = {
        let body = F.body()
        let zstdBody = zstdCompress(body)
        var corrupt = zstdBody
        for i in corrupt.indices.dropFirst(6) { corrupt[i] ^= 0xA5 }
        return [
            HostileCase(
                "uncompressed body shorter than the header says",
                F.frame(header: F.header { $0.uncompressedSize = F.varint(UInt64(body.count + 1)) }),
                .inconsistent("uncompressed body")),
            HostileCase(
                "zstd frame declares one byte more than the header",
                F.frame(storedBody: zstdBody, uncompressedSize: body.count - 1), .decompressionFailed("declares")),
            HostileCase(
                "header claims the 128 MiB maximum, zstd frame declares a few bytes",
                F.frame(storedBody: zstdBody, uncompressedSize: limits.maximumUncompressedBytes),
                .decompressionFailed("declares")),
            HostileCase(
                "zstd frame without a content size",
                F.frame(storedBody: F.zstdFrameWithoutContentSize(body), uncompressedSize: body.count),
                .decompressionFailed("content size")),
            HostileCase(
                "zstd frame that declares more than it holds",
                F.frame(
                    storedBody: F.zstdFrame(declaring: UInt8(body.count + 5), content: body),
                    uncompressedSize: body.count + 5),
                .decompressionFailed()),
            HostileCase(
                "bytes after the zstd frame", F.frame(storedBody: zstdBody + [0], uncompressedSize: body.count),
                .decompressionFailed("after the zstd frame")),
            HostileCase(
                "two zstd frames", F.frame(storedBody: zstdBody + zstdBody, uncompressedSize: body.count),
                .decompressionFailed("after the zstd frame")),
            HostileCase(
                "corrupted zstd data under a valid checksum",
                F.frame(storedBody: corrupt, uncompressedSize: body.count),
                .decompressionFailed()),
            HostileCase(
                "plain body marked as zstd", F.frame(storedBody: body, uncompressedSize: body.count),
                .decompressionFailed()),
            HostileCase("empty zstd body", F.frame(storedBody: [], uncompressedSize: 0), .decompressionFailed()),
            HostileCase(
                "zstd frame of an empty body", F.frame(storedBody: zstdCompress([]), uncompressedSize: 0),
                .truncated(field: "relation count")),
        ]
    }()

    // MARK: Absurd counts and lengths (must fail before reserving anything)

    static let counts: [HostileCase] = {
        var cases: [HostileCase] = []
        for (label, n) in [("2^62", F.huge), ("UInt64.max", UInt64.max), ("one more than the bytes left", 1000)] {
            cases += [
                HostileCase(
                    "relation count \(label)", F.frame(body: F.body(relationCount: F.varint(n))),
                    .lengthOutOfBounds(field: "relation count")),
                HostileCase(
                    "column count \(label)",
                    F.frame(
                        body: F.body(relations: [F.relationBytes(columnCount: F.varint(n), columns: [F.column()])])),
                    .lengthOutOfBounds(field: "column count")),
                HostileCase(
                    "change count \(label)",
                    F.frame(body: F.body(transactions: [F.transaction(changeCount: F.varint(n))])),
                    .lengthOutOfBounds(field: "change count")),
                HostileCase(
                    "GTID count \(label)",
                    F.frame(body: F.body(transactions: [F.transaction(position: [2] + F.varint(n) + [1, 1, 1])])),
                    .lengthOutOfBounds(field: "GTID count")),
                HostileCase(
                    "array length \(label)",
                    F.frame(
                        body: F.body(transactions: [
                            F.transaction(changes: [F.insert([[20] + F.varint(n) + [0], F.value(.null)])])
                        ])),
                    .lengthOutOfBounds(field: "array length")),
                HostileCase(
                    "text length \(label)",
                    F.frame(
                        body: F.body(transactions: [
                            F.transaction(changes: [F.insert([F.value(.null), [9] + F.varint(n) + [0x61]])])
                        ])),
                    .lengthOutOfBounds(field: "text value")),
                HostileCase(
                    "binary length \(label)",
                    F.frame(
                        body: F.body(transactions: [
                            F.transaction(changes: [F.insert([F.value(.null), [10] + F.varint(n) + [0]])])
                        ])),
                    .lengthOutOfBounds(field: "binary value")),
                HostileCase(
                    "bit string length \(label)",
                    F.frame(
                        body: F.body(transactions: [
                            F.transaction(changes: [F.insert([F.value(.null), [19] + F.varint(n) + [0]])])
                        ])),
                    .lengthOutOfBounds(field: "bit string length")),
                HostileCase(
                    "decimal length \(label)",
                    F.frame(
                        body: F.body(transactions: [
                            F.transaction(changes: [F.insert([F.value(.null), [6] + F.varint(n) + [0x31]])])
                        ])),
                    .lengthOutOfBounds(field: "decimal value")),
                HostileCase(
                    "origin length \(label)",
                    F.frame(body: F.body(transactions: [F.transaction(origin: [1] + F.varint(n) + [0x61])])),
                    .lengthOutOfBounds(field: "origin")),
                HostileCase(
                    "relation schema length \(label)", F.frame(body: F.body(relations: [F.varint(n) + [0x73]])),
                    .lengthOutOfBounds(field: "relation schema")),
            ]
        }
        cases += [
            HostileCase(
                "transaction count 0xFFFFFFFF over a one-transaction body",
                F.frame(header: F.header { $0.transactionCount = F.varint(UInt64(UInt32.max)) }),
                .lengthOutOfBounds(field: "transaction count")),
            HostileCase(
                "row image wider than the bytes left",
                F.frame(
                    body: F.body(
                        relations: [
                            F.relationBytes(name: F.string("wide"), columns: Array(repeating: F.column(), count: 200))
                        ],
                        transactions: [F.transaction(changes: [F.insert([F.value(.null)])])])),
                .truncated(field: "row image of s.wide")),
            HostileCase(
                "integer varint overflowing 64 bits",
                F.frame(
                    body: F.body(transactions: [
                        F.transaction(changes: [
                            F.insert([[4] + [UInt8](repeating: 0xFF, count: 9) + [0x02], F.value(.null)])
                        ])
                    ])),
                .malformed(field: "integer value", reasonContains: "64 bits")),
            HostileCase(
                "1000-byte varint",
                F.frame(
                    body: F.body(transactions: [
                        F.transaction(changes: [
                            F.insert([[5] + [UInt8](repeating: 0x80, count: 1000) + [0], F.value(.null)])
                        ])
                    ])),
                .malformed(field: "unsigned value", reasonContains: "64 bits")),
            HostileCase(
                "body ends inside a varint",
                F.frame(
                    body: F.body(transactions: [
                        F.transaction(
                            position: F.position(F.position), time: [0x80], origin: [], chunkIndex: [], finalFlag: [],
                            changeCount: [], changes: [])
                    ])),
                .truncated(field: "commit time")),
        ]
        return cases
    }()

    // MARK: Nesting

    static let nesting: [HostileCase] = {
        func nestedArray(_ depth: Int) -> [UInt8] { Array(repeating: [20, 1], count: depth).joined() + [0] }
        func nestedType(_ depth: Int) -> [UInt8] { [UInt8](repeating: 19, count: depth) + [5] }
        return [
            HostileCase(
                "arrays nested 100 deep",
                F.frame(
                    body: F.body(transactions: [F.transaction(changes: [F.insert([nestedArray(100), F.value(.null)])])])
                ),
                .malformed(field: "array value", reasonContains: "nested")),
            HostileCase(
                "arrays nested 9 deep (one past the limit)",
                F.frame(
                    body: F.body(transactions: [F.transaction(changes: [F.insert([nestedArray(9), F.value(.null)])])])),
                .malformed(field: "array value", reasonContains: "nested")),
            HostileCase(
                "arrays nested 100 000 deep",
                F.frame(
                    body: F.body(transactions: [
                        F.transaction(changes: [F.insert([nestedArray(100_000), F.value(.null)])])
                    ])),
                .malformed(field: "array value", reasonContains: "nested")),
            HostileCase(
                "array column type nested 100 deep",
                F.frame(
                    body: F.body(relations: [F.relationBytes(columns: [F.column(type: nestedType(100)), F.column()])])),
                .malformed(field: "column type", reasonContains: "nested")),
            HostileCase(
                "array column type nested 100 000 deep",
                F.frame(
                    body: F.body(relations: [
                        F.relationBytes(columns: [F.column(type: nestedType(100_000)), F.column()])
                    ])),
                .malformed(field: "column type", reasonContains: "nested")),
        ]
    }()

    // MARK: Values

    static let values: [HostileCase] = {
        func row(_ first: [UInt8]) -> [UInt8] {
            F.frame(body: F.body(transactions: [F.transaction(changes: [F.insert([first, F.value(.null)])])]))
        }
        var cases: [HostileCase] = [
            HostileCase("unknown value tag 22", row([22]), .malformed(field: "value", reasonContains: "22")),
            HostileCase("unknown value tag 255", row([255]), .malformed(field: "value", reasonContains: "255")),
        ]
        let badUTF8: [(String, [UInt8])] = [
            ("0xFF", [0x61, 0xFF]), ("overlong NUL", [0xC0, 0x80]), ("UTF-16 surrogate", [0xED, 0xA0, 0x80]),
            ("cut multibyte sequence", [0x61, 0xE2, 0x82]), ("beyond U+10FFFF", [0xF4, 0x90, 0x80, 0x80]),
            ("lone continuation byte", [0x80]),
        ]
        for (label, bytes) in badUTF8 {
            cases.append(
                HostileCase(
                    "text value not UTF-8 (\(label))", row([9] + F.raw(bytes)),
                    .malformed(field: "text value", reasonContains: "UTF-8")))
        }
        cases += [
            HostileCase(
                "json value not UTF-8", row([17] + F.raw([0x7B, 0xFF, 0x7D])),
                .malformed(field: "json value", reasonContains: "UTF-8")),
            HostileCase(
                "native value not UTF-8", row([21] + F.raw([0xC3])),
                .malformed(field: "native value", reasonContains: "UTF-8")),
            HostileCase(
                "origin not UTF-8", F.frame(body: F.body(transactions: [F.transaction(origin: [1] + F.raw([0xFE]))])),
                .malformed(field: "origin", reasonContains: "UTF-8")),
            HostileCase(
                "relation name not UTF-8",
                F.frame(
                    body: F.body(relations: [F.relationBytes(name: F.raw([0xFF]), columns: [F.column(), F.column()])])),
                .malformed(field: "relation name", reasonContains: "UTF-8")),
            HostileCase(
                "column name not UTF-8",
                F.frame(
                    body: F.body(relations: [F.relationBytes(columns: [F.column(name: F.raw([0xFF])), F.column()])])),
                .malformed(field: "column name", reasonContains: "UTF-8")),
        ]
        for text in ["12a", "", "1e5", "1.2.3", "--1", "NaN ", " 1", "١٢"] {
            cases.append(
                HostileCase("decimal \"\(text)\"", row([6] + F.string(text)), .malformed(field: "decimal value")))
        }
        cases += [
            HostileCase("date month 13", row([11] + F.signed(2024) + [13, 1]), .malformed(field: "date")),
            HostileCase("date day 32", row([11] + F.signed(2024) + [1, 32]), .malformed(field: "date")),
            HostileCase(
                "timestamp day 255", row([14] + F.signed(2024) + [1, 255] + F.signed(0)), .malformed(field: "date")),
            HostileCase(
                "date year beyond Int32", row([11] + F.signed(Int64(Int32.max) + 1) + [1, 1]),
                .malformed(field: "date year")),
            HostileCase(
                "bit string with non-zero padding", row([19] + F.varint(9) + [0xFF, 0xC0]),
                .malformed(field: "bit string")),
            HostileCase(
                "time zone offset beyond Int32", row([13] + F.signed(0) + F.signed(Int64(Int32.min) - 1)),
                .malformed(field: "time zone offset")),
            HostileCase(
                "interval months beyond Int32", row([16] + F.signed(1 << 40) + F.signed(0) + F.signed(0)),
                .malformed(field: "interval months")),
            HostileCase(
                "interval days beyond Int32", row([16] + F.signed(0) + F.signed(-(1 << 40)) + F.signed(0)),
                .malformed(field: "interval days")),
            HostileCase(
                "uuid cut short",
                F.frame(
                    body: F.body(transactions: [F.transaction(changes: [F.insert([F.value(.null), [18, 1, 2, 3]])])])),
                .truncated(field: "uuid value")),
            HostileCase(
                "double cut short",
                F.frame(
                    body: F.body(transactions: [F.transaction(changes: [F.insert([F.value(.null), [8, 1, 2, 3]])])])),
                .truncated(field: "double value")),
        ]
        return cases
    }()

    // MARK: Model structure

    static let structure: [HostileCase] = {
        let image = F.rowImage
        let truncate: [UInt8] = [3, 0]
        return [
            HostileCase(
                "relation index out of range",
                F.frame(body: F.body(transactions: [F.transaction(changes: [F.change(relationIndex: [1])])])),
                .malformed(field: "relation index")),
            HostileCase(
                "relation index 2^62",
                F.frame(
                    body: F.body(transactions: [F.transaction(changes: [F.change(relationIndex: F.varint(F.huge))])])),
                .malformed(field: "relation index")),
            HostileCase(
                "relation index with no relations",
                F.frame(body: F.body(relations: [], transactions: [F.transaction()])),
                .malformed(field: "relation index")),
            HostileCase(
                "insert with an old image",
                F.frame(body: F.body(transactions: [F.transaction(changes: [F.change(old: image, new: image)])])),
                .malformed(field: "row change", reasonContains: "insert")),
            HostileCase(
                "insert without a new image",
                F.frame(body: F.body(transactions: [F.transaction(changes: [F.change(new: [0])])])),
                .malformed(field: "row change", reasonContains: "insert")),
            HostileCase(
                "update without a new image",
                F.frame(
                    body: F.body(transactions: [F.transaction(changes: [F.change(kind: [1], old: image, new: [0])])])),
                .malformed(field: "row change", reasonContains: "update")),
            HostileCase(
                "delete with a new image",
                F.frame(
                    body: F.body(transactions: [F.transaction(changes: [F.change(kind: [2], old: image, new: image)])])),
                .malformed(field: "row change", reasonContains: "delete")),
            HostileCase(
                "delete without an old image",
                F.frame(body: F.body(transactions: [F.transaction(changes: [F.change(kind: [2], new: image)])])),
                .malformed(field: "row change", reasonContains: "delete")),
            HostileCase(
                "truncate with a new image",
                F.frame(body: F.body(transactions: [F.transaction(changes: [F.change(kind: truncate, new: image)])])),
                .malformed(field: "row change", reasonContains: "truncate")),
            HostileCase(
                "truncate with an old image",
                F.frame(
                    body: F.body(transactions: [
                        F.transaction(changes: [F.change(kind: truncate, old: image, new: [0])])
                    ])),
                .malformed(field: "row change", reasonContains: "truncate")),
            HostileCase(
                "unknown change kind 7",
                F.frame(body: F.body(transactions: [F.transaction(changes: [F.change(kind: [7])])])),
                .malformed(field: "change kind")),
            HostileCase(
                "a copied row without a new image",
                F.frame(body: F.body(transactions: [F.transaction(changes: [F.change(kind: [4], old: image)])])),
                .malformed(field: "row change", reasonContains: "copy")),
            HostileCase(
                "unknown truncate option bit",
                F.frame(body: F.body(transactions: [F.transaction(changes: [F.change(kind: [3, 4], new: [0])])])),
                .malformed(field: "truncate options")),
            HostileCase(
                "row image flag 2",
                F.frame(body: F.body(transactions: [F.transaction(changes: [F.change(new: [2] + image.dropFirst())])])),
                .malformed(field: "row image flag")),
            HostileCase(
                "chunk final flag 2", F.frame(body: F.body(transactions: [F.transaction(finalFlag: [2])])),
                .malformed(field: "chunk final flag")),
            HostileCase(
                "chunk index beyond UInt32",
                F.frame(body: F.body(transactions: [F.transaction(chunkIndex: F.varint(1 << 32))])),
                .malformed(field: "chunk index")),
            HostileCase(
                "origin presence flag 2", F.frame(body: F.body(transactions: [F.transaction(origin: [2])])),
                .malformed(field: "origin")),
            HostileCase(
                "unknown column flag bit",
                F.frame(body: F.body(relations: [F.relationBytes(columns: [F.column(flags: [4]), F.column()])])),
                .malformed(field: "column flags")),
            HostileCase(
                "unknown column type 21",
                F.frame(body: F.body(relations: [F.relationBytes(columns: [F.column(type: [21]), F.column()])])),
                .malformed(field: "column type", reasonContains: "21")),
            HostileCase(
                "integer column 12 bits wide",
                F.frame(
                    body: F.body(relations: [F.relationBytes(columns: [F.column(type: [1, 12, 1]), F.column()])])),
                .malformed(field: "column type", reasonContains: "12")),
            HostileCase(
                "decimal precision beyond Int32",
                F.frame(
                    body: F.body(relations: [
                        F.relationBytes(columns: [F.column(type: [2] + F.signed(1 << 40) + F.signed(2)), F.column()])
                    ])),
                .malformed(field: "decimal precision")),
            HostileCase(
                "column type id beyond UInt32",
                F.frame(
                    body: F.body(relations: [
                        F.relationBytes(columns: [F.column(typeID: F.varint(1 << 32)), F.column()])
                    ])),
                .malformed(field: "column type id")),
            HostileCase(
                "position tag 0", F.frame(body: F.body(transactions: [F.transaction(position: [0])])),
                .malformed(field: "position")),
            HostileCase(
                "position tag 4", F.frame(body: F.body(transactions: [F.transaction(position: [4])])),
                .malformed(field: "position")),
            HostileCase(
                "MariaDB position naming a domain twice",
                F.frame(body: F.body(transactions: [F.transaction(position: [2, 2, 0, 1, 5, 0, 2, 6])])),
                .malformed(field: "MariaDB position")),
            HostileCase(
                "MariaDB domain beyond UInt32",
                F.frame(body: F.body(transactions: [F.transaction(position: [2, 1] + F.varint(1 << 32) + [1, 1])])),
                .malformed(field: "GTID domain")),
            HostileCase(
                "MySQL GTID set that does not parse",
                F.frame(
                    body: F.body(transactions: [F.transaction(position: [3] + F.string("not-a-uuid:1-5") + [0, 0])])),
                .malformed(field: "MySQL position")),
            HostileCase(
                "MySQL GTID interval 5-1",
                F.frame(
                    body: F.body(transactions: [
                        F.transaction(position: [3] + F.string("3e11fa47-71ca-11e1-9e33-c80aa9429562:5-1") + [0, 0])
                    ])),
                .malformed(field: "MySQL position")),
            HostileCase(
                "MySQL binlog offset flag 2",
                F.frame(body: F.body(transactions: [F.transaction(position: [3] + F.string("") + [0, 2, 1])])),
                .malformed(field: "binlog offset")),
        ]
    }()

    // MARK: Header against body

    static let consistency: [HostileCase] = {
        let other = F.position(.postgresql(LSN(0x1_0000_0101)))
        return [
            HostileCase(
                "header row count 2, body 1", F.frame(header: F.header { $0.rowCount = F.varint(2) }),
                .inconsistent("rows")),
            HostileCase(
                "header row count 0, body 1", F.frame(header: F.header { $0.rowCount = F.varint(0) }),
                .inconsistent("rows")),
            HostileCase(
                "header first position differs", F.frame(header: F.header { $0.first = other }),
                .inconsistent("position")),
            HostileCase(
                "header last position differs", F.frame(header: F.header { $0.last = other }), .inconsistent("position")
            ),
            HostileCase(
                "header first position of another engine",
                F.frame(header: F.header { $0.first = F.position(.mariadb(try! MariaDBGTIDList(parsing: "0-1-1"))) }),
                .inconsistent("position")),
            HostileCase(
                "header first commit time differs", F.frame(header: F.header { $0.firstTime = F.signed(F.time - 1) }),
                .inconsistent("commit-time")),
            HostileCase(
                "header last commit time differs", F.frame(header: F.header { $0.lastTime = F.signed(F.time + 1) }),
                .inconsistent("commit-time")),
            HostileCase(
                "header says 2 transactions, body holds 1",
                F.frame(header: F.header { $0.transactionCount = F.varint(2) }),
                .truncated(field: "position tag")),
            HostileCase(
                "body holds a transaction more than the header says",
                F.frame(body: F.body(transactions: [F.transaction(), F.transaction()])),
                .inconsistent("follow the last transaction")),
            HostileCase(
                "a byte after the last transaction", F.frame(body: F.body(trailing: [0])),
                .inconsistent("follow the last transaction")),
        ]
    }()

    static var all: [HostileCase] {
        prefix + header + compression + counts + nesting + values + structure + consistency
    }
}

private func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * UInt32($0))) } }

@Suite("Hostile frames")
struct HostileFrameTests {
    /// The fixture is what every forged frame is derived from: it must be valid,
    /// and equal to what the encoder writes, or the forged frames prove nothing.
    @Test("the hand-built fixture frame is valid and matches the encoder")
    func fixtureIsValid() throws {
        let decoder = makeDecoder()
        #expect(try decoder.decode(HostileCorpus.valid) == Fixture.batch)
        #expect(try decoder.decode(HostileCorpus.validZstd) == Fixture.batch)
        #expect(try makeEncoder(.none).encode(Fixture.batch).frame == HostileCorpus.valid)
        #expect(try makeEncoder(.zstd).encode(Fixture.batch).frame == HostileCorpus.validZstd)
    }

    @Test("a forged frame is refused with the expected error", arguments: HostileCorpus.all)
    func refused(_ hostile: HostileCase) {
        expectRefused(hostile.frame, hostile.refusal, headerLevel: hostile.headerLevel)
    }

    @Test("every truncation of a valid frame is refused", arguments: [false, true])
    func truncations(zstd: Bool) {
        let frame = zstd ? HostileCorpus.validZstd : HostileCorpus.valid
        let decoder = makeDecoder()
        for length in 0..<frame.count {
            let prefix = Array(frame.prefix(length))
            let expected: BatchCodecError =
                length < 20
                ? .tooShort(length: length) : .lengthMismatch(expected: UInt64(frame.count), actual: length)
            #expect(decodeFailure(prefix, decoder) == expected, "prefix of \(length) bytes")
            #expect(headerFailure(prefix, decoder) == expected, "prefix of \(length) bytes")
        }
    }

    /// CRC32C detects every single-bit error; fields checked before the CRC give
    /// their own, more specific error, which is predicted here bit by bit.
    @Test("every single-bit flip is refused with the predicted error", arguments: [false, true])
    func bitFlips(zstd: Bool) {
        let frame = zstd ? HostileCorpus.validZstd : HostileCorpus.valid
        let decoder = makeDecoder()
        let limits = BatchLimits.default
        for bit in 0..<(frame.count * 8) {
            var flipped = frame
            flipped[bit / 8] ^= 1 << UInt8(bit % 8)
            let byte = bit / 8
            let expected: Refusal
            switch byte {
            case 0..<4: expected = .exactly(.badMagic)
            case 4..<6: expected = .exactly(.unsupportedVersion(UInt16(flipped[4]) | UInt16(flipped[5]) << 8))
            case 6: expected = flipped[6] <= 1 ? .checksumMismatch : .exactly(.unknownCompression(flipped[6]))
            case 7: expected = .exactly(.unknownFlags(flipped[7]))
            case 8..<16:
                let h = flipped.le32(at: 8), b = flipped.le32(at: 12)
                if h > limits.maximumHeaderBytes {
                    expected = .exactly(
                        .lengthOutOfBounds(
                            field: "header length", value: UInt64(h), limit: UInt64(limits.maximumHeaderBytes)))
                } else if b > limits.maximumBodyBytes {
                    expected = .exactly(
                        .lengthOutOfBounds(
                            field: "body length", value: UInt64(b), limit: UInt64(limits.maximumBodyBytes)))
                } else {
                    expected = .exactly(.lengthMismatch(expected: 20 + UInt64(h) + UInt64(b), actual: frame.count))
                }
            default: expected = .checksumMismatch
            }
            guard let error = decodeFailure(flipped, decoder) else {
                Issue.record("bit \(bit) flipped and the frame was accepted")
                continue
            }
            #expect(expected.matches(error), "bit \(bit): got \(error), expected \(expected)")
            #expect(headerFailure(flipped, decoder) == error, "bit \(bit): decodeHeader disagrees")
        }
    }

    @Test("configured limits are enforced before anything is read")
    func customLimits() throws {
        var rng = SplitMix64(seed: 11)
        var batch = Arb.batch(&rng)
        batch.transactions[0].changes = [
            RowChange(relation: anyValueRelation, kind: .insert, new: [.bytes(Array(repeating: 7, count: 300))])
        ]
        let frame = try makeEncoder(.none).encode(batch).frame
        let parts = FrameParts(frame)
        let smallBody = makeDecoder(limits: BatchLimits(maximumBodyBytes: parts.body.count - 1))
        #expect(
            decodeFailure(frame, smallBody)
                == .lengthOutOfBounds(
                    field: "body length", value: UInt64(parts.body.count),
                    limit: UInt64(parts.body.count - 1)))
        let smallHeader = makeDecoder(limits: BatchLimits(maximumHeaderBytes: parts.header.count - 1))
        #expect(
            decodeFailure(frame, smallHeader)
                == .lengthOutOfBounds(
                    field: "header length", value: UInt64(parts.header.count),
                    limit: UInt64(parts.header.count - 1)))
        let smallUncompressed = makeDecoder(limits: BatchLimits(maximumUncompressedBytes: parts.body.count - 1))
        #expect(
            headerFailure(frame, smallUncompressed)
                == .lengthOutOfBounds(
                    field: "uncompressed body size", value: UInt64(parts.body.count),
                    limit: UInt64(parts.body.count - 1)))
        let exact = makeDecoder(
            limits: BatchLimits(
                maximumHeaderBytes: parts.header.count, maximumBodyBytes: parts.body.count,
                maximumUncompressedBytes: parts.body.count))
        #expect(try exact.decode(frame) == batch)
    }
}
