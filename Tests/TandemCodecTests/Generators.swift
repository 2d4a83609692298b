import PropertyBased
import TandemCodec
import TandemCore

/// Random change-model values for the round-trip properties. Plain functions over
/// any `RandomNumberGenerator`, so that the same code feeds PropertyBased
/// (random seeds, shrinking) and the fixed-seed fuzz loops.
///
/// Every generator mixes hand-picked edge values with random ones; integers draw
/// their bit width first so that every varint length (1–10 bytes) is common.
enum Arb {
    static func chance<G: RandomNumberGenerator>(_ r: inout G, _ p: Double) -> Bool {
        Double.random(in: 0..<1, using: &r) < p
    }

    static func pick<T, G: RandomNumberGenerator>(_ r: inout G, _ items: [T]) -> T {
        items[Int.random(in: 0..<items.count, using: &r)]
    }

    static func uint64<G: RandomNumberGenerator>(_ r: inout G) -> UInt64 {
        if chance(&r, 0.2) {
            return pick(
                &r,
                [
                    0, 1, 127, 128, 255, 16383, 16384, UInt64(UInt32.max), UInt64(UInt32.max) + 1,
                    UInt64(Int64.max), UInt64.max - 1, UInt64.max,
                ])
        }
        let bits = Int.random(in: 0...64, using: &r)
        return bits == 0 ? 0 : r.next() >> UInt64(64 - bits)
    }

    static func int64<G: RandomNumberGenerator>(_ r: inout G) -> Int64 {
        if chance(&r, 0.2) {
            return pick(
                &r,
                [
                    0, 1, -1, 63, 64, -64, -65, Int64(Int32.min), Int64(Int32.max), Int64.min, Int64.min + 1,
                    Int64.max, Int64.max - 1,
                ])
        }
        let magnitude = Int64(bitPattern: uint64(&r) >> 1)
        return Bool.random(using: &r) ? magnitude : ~magnitude
    }

    static func int32<G: RandomNumberGenerator>(_ r: inout G) -> Int32 {
        chance(&r, 0.2) ? pick(&r, [0, -1, 1, .min, .max]) : Int32(truncatingIfNeeded: int64(&r))
    }

    static func uint32<G: RandomNumberGenerator>(_ r: inout G) -> UInt32 {
        chance(&r, 0.2) ? pick(&r, [0, 1, .max]) : UInt32(truncatingIfNeeded: uint64(&r))
    }

    /// Unicode text: ASCII with NUL and control characters, Latin-1, CJK, combining
    /// marks, emoji (4-byte UTF-8), the last scalars before and after the surrogates.
    static func text<G: RandomNumberGenerator>(_ r: inout G, maxLength: Int = 12) -> String {
        if chance(&r, 0.1) {
            return pick(&r, ["", "\0", "a\0b", "👩‍👩‍👧‍👦", "e\u{301}", "\u{10FFFF}", "\u{FEFF}x", "line\nbreak"])
        }
        var scalars = String.UnicodeScalarView()
        for _ in 0..<Int.random(in: 0...maxLength, using: &r) {
            let range: ClosedRange<UInt32> = pick(
                &r,
                [
                    0...0x7F, 0x20...0x7E, 0x80...0x7FF, 0x300...0x36F, 0x4E00...0x9FFF,
                    0xD000...0xD7FF, 0xE000...0xFFFF, 0x1F300...0x1FAFF, 0x10000...0x10FFFF,
                ])
            scalars.append(Unicode.Scalar(UInt32.random(in: range, using: &r))!)
        }
        return String(scalars)
    }

    static func bytes<G: RandomNumberGenerator>(_ r: inout G, maxLength: Int = 24) -> [UInt8] {
        if chance(&r, 0.15) { return pick(&r, [[], [0], [0, 0, 0], [0xFF]]) }
        return (0..<Int.random(in: 0...maxLength, using: &r)).map { _ in UInt8.random(in: 0...255, using: &r) }
    }

    static func decimal<G: RandomNumberGenerator>(_ r: inout G) -> ExactDecimal {
        if chance(&r, 0.2) {
            return ExactDecimal(
                pick(
                    &r,
                    [
                        "NaN", "Infinity", "-Infinity", "0", "-0", "+7.", ".5", "-0.000",
                        "1234567890123456789012345678901234567890.123456789",
                        "-99999999999999999999999999999999999999999999",
                    ]))!
        }
        let digits = { (n: Int, r: inout G) in
            String((0..<n).map { _ in Character(Unicode.Scalar(UInt8.random(in: 48...57, using: &r))) })
        }
        var text = pick(&r, ["", "-", "+"])
        text += digits(Int.random(in: 1...45, using: &r), &r)
        if Bool.random(using: &r) { text += "." + digits(Int.random(in: 0...20, using: &r), &r) }
        return ExactDecimal(text)!
    }

    static func float32<G: RandomNumberGenerator>(_ r: inout G) -> Float {
        if chance(&r, 0.4) {
            return pick(
                &r,
                [
                    Float.nan, -Float.nan, .signalingNaN, Float(bitPattern: 0x7FC0_1234), .infinity, -.infinity,
                    0, -0.0, .leastNonzeroMagnitude, -.leastNonzeroMagnitude, .leastNormalMagnitude,
                    Float(bitPattern: 0x007F_FFFF), .greatestFiniteMagnitude, -.greatestFiniteMagnitude, 1, -1.5,
                ])
        }
        return Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &r))
    }

    static func float64<G: RandomNumberGenerator>(_ r: inout G) -> Double {
        if chance(&r, 0.4) {
            return pick(
                &r,
                [
                    Double.nan, -Double.nan, .signalingNaN, Double(bitPattern: 0x7FF8_0000_DEAD_BEEF), .infinity,
                    -.infinity, 0, -0.0, .leastNonzeroMagnitude, -.leastNonzeroMagnitude, .leastNormalMagnitude,
                    Double(bitPattern: 0x000F_FFFF_FFFF_FFFF), .greatestFiniteMagnitude, .pi, -1e-300,
                ])
        }
        return Double(bitPattern: r.next())
    }

    /// Valid calendar fields (month 0–12, day 0–31, zero dates included), any year.
    static func date<G: RandomNumberGenerator>(_ r: inout G) -> CivilDate {
        if chance(&r, 0.15) {
            return pick(
                &r,
                [
                    CivilDate(year: 0, month: 0, day: 0), CivilDate(year: 2024, month: 2, day: 0),
                    CivilDate(year: -4712, month: 11, day: 24), CivilDate(year: 294_276, month: 12, day: 31),
                    CivilDate(year: .min + 1, month: 1, day: 1), CivilDate(year: .max, month: 12, day: 31),
                ])
        }
        // Not Int32.min: CivilDate.description traps on it (Temporal.swift:24), and a
        // failing property prints its input. The named edge corpus covers Int32.min.
        return CivilDate(
            year: max(int32(&r), .min + 1), month: UInt8.random(in: 0...12, using: &r),
            day: UInt8.random(in: 0...31, using: &r))
    }

    /// Times of day, negative and >24 h MySQL TIME durations, and arbitrary Int64.
    static func time<G: RandomNumberGenerator>(_ r: inout G) -> TimeOfDay {
        switch Int.random(in: 0..<4, using: &r) {
        case 0: TimeOfDay(microseconds: Int64.random(in: 0..<86_400_000_000, using: &r))
        case 1: TimeOfDay(hours: 838, minutes: 59, seconds: 59, microseconds: 999_999, negative: Bool.random(using: &r))
        case 2: TimeOfDay(microseconds: -Int64.random(in: 0...3_020_399_999_999, using: &r))
        default: TimeOfDay(microseconds: int64(&r))
        }
    }

    static func timestamp<G: RandomNumberGenerator>(_ r: inout G) -> Timestamp {
        chance(&r, 0.2)
            ? Timestamp(
                microsecondsSinceEpoch: pick(&r, [0, -1, -62_135_596_800_000_000, 1_700_000_000_123_456, .min, .max]))
            : Timestamp(microsecondsSinceEpoch: int64(&r))
    }

    static func bits<G: RandomNumberGenerator>(_ r: inout G) -> BitString {
        let count = Int.random(in: 0...70, using: &r)
        var bytes = (0..<((count + 7) / 8)).map { _ in UInt8.random(in: 0...255, using: &r) }
        if count % 8 != 0 { bytes[bytes.count - 1] &= ~(0xFF >> UInt8(count % 8)) }
        return BitString(count: count, bytes: bytes)!
    }

    static func caseName(_ v: Value) -> String {
        switch v {
        case .null: "null"
        case .unchanged: "unchanged"
        case .bool: "bool"
        case .int: "int"
        case .uint: "uint"
        case .decimal: "decimal"
        case .float32: "float32"
        case .float64: "float64"
        case .text: "text"
        case .bytes: "bytes"
        case .date: "date"
        case .time: "time"
        case .timeWithZone: "timeWithZone"
        case .timestamp: "timestamp"
        case .timestampWithZone: "timestampWithZone"
        case .interval: "interval"
        case .json: "json"
        case .uuid: "uuid"
        case .bits: "bits"
        case .array: "array"
        case .native: "native"
        }
    }

    /// Number of `Value` cases; `value` draws them uniformly.
    static let valueCaseCount = 21

    static func value<G: RandomNumberGenerator>(_ r: inout G, depth: Int = 0, maxDepth: Int = 3) -> Value {
        let limit = depth < maxDepth ? valueCaseCount : valueCaseCount - 1  // arrays nest at most maxDepth levels
        switch Int.random(in: 0..<limit, using: &r) {
        case 0: return .null
        case 1: return .unchanged
        case 2: return .bool(Bool.random(using: &r))
        case 3: return .int(int64(&r))
        case 4: return .uint(uint64(&r))
        case 5: return .decimal(decimal(&r))
        case 6: return .float32(float32(&r))
        case 7: return .float64(float64(&r))
        case 8: return .text(text(&r))
        case 9: return .bytes(bytes(&r))
        case 10: return .date(date(&r))
        case 11: return .time(time(&r))
        case 12:
            return .timeWithZone(
                time(&r), offsetSeconds: chance(&r, 0.5) ? Int32.random(in: -57_599...57_599, using: &r) : int32(&r))
        case 13: return .timestamp(CivilDateTime(date: date(&r), time: time(&r)))
        case 14: return .timestampWithZone(timestamp(&r))
        case 15: return .interval(Interval(months: int32(&r), days: int32(&r), microseconds: int64(&r)))
        case 16: return .json(chance(&r, 0.5) ? "{\"k\": [1, 2.5, null, \"\(text(&r, maxLength: 4))\"]}" : text(&r))
        case 17: return .uuid(UUIDBytes(high: r.next(), low: r.next()))
        case 18: return .bits(bits(&r))
        case 19: return .native(pick(&r, ["[1,5)", "192.168.0.1/24", "(1,2)", "", text(&r)]))
        default:
            return .array(
                (0..<Int.random(in: 0...4, using: &r)).map { _ in value(&r, depth: depth + 1, maxDepth: maxDepth) })
        }
    }

    static func logicalType<G: RandomNumberGenerator>(_ r: inout G, depth: Int = 0) -> LogicalType {
        switch Int.random(in: 0..<(depth < 3 ? 21 : 20), using: &r) {
        case 0: return .boolean
        case 1: return .integer(bits: pick(&r, [8, 16, 24, 32, 64]), signed: Bool.random(using: &r))
        case 2:
            return .decimal(
                precision: chance(&r, 0.3) ? nil : Int.random(in: 0...1000, using: &r),
                scale: chance(&r, 0.3) ? nil : Int.random(in: 0...1000, using: &r))
        case 3: return .float32
        case 4: return .float64
        case 5: return .text
        case 6: return .binary
        case 7: return .date
        case 8: return .time
        case 9: return .timeWithZone
        case 10: return .timestamp
        case 11: return .timestampWithZone
        case 12: return .interval
        case 13: return .json
        case 14: return .uuid
        case 15: return .bits
        case 16: return .enumeration
        case 17: return .set
        case 18: return .year
        case 19: return .other
        default: return .array(logicalType(&r, depth: depth + 1))
        }
    }

    static func relation<G: RandomNumberGenerator>(_ r: inout G, index: Int) -> Relation {
        // The index suffix keeps names distinct inside a batch (the encoder refuses
        // one name with two shapes); the rest is arbitrary Unicode.
        let name = RelationName(schema: text(&r, maxLength: 6), name: text(&r, maxLength: 6) + "#\(index)")
        let width = chance(&r, 0.05) ? 0 : Int.random(in: 1...6, using: &r)
        let columns = (0..<width).map { _ in
            Column(
                name: text(&r, maxLength: 8), type: logicalType(&r), nativeType: text(&r, maxLength: 10),
                nativeTypeID: uint32(&r), isKey: Bool.random(using: &r), isNullable: Bool.random(using: &r))
        }
        return Relation(name: name, columns: columns)
    }

    static func mariadbList<G: RandomNumberGenerator>(_ r: inout G) -> MariaDBGTIDList {
        let domains = Set((0..<Int.random(in: 1...4, using: &r)).map { _ in uint32(&r) })
        return try! MariaDBGTIDList(domains.map { MariaDBGTID(domain: $0, server: uint32(&r), sequence: uint64(&r)) })
    }

    static func mysqlPosition<G: RandomNumberGenerator>(_ r: inout G) -> MySQLPosition {
        let hex = Array("0123456789abcdefABCDEF")
        var entries: [String] = []
        for _ in 0..<Int.random(in: 0...3, using: &r) {
            let uuid = [8, 4, 4, 4, 12].map { n in String((0..<n).map { _ in pick(&r, hex) }) }.joined(separator: "-")
            var ranges: [String] = []
            for _ in 0..<Int.random(in: 1...3, using: &r) {
                let lower = UInt64.random(in: 1...1_000_000, using: &r)
                ranges.append(
                    Bool.random(using: &r)
                        ? "\(lower)" : "\(lower)-\(lower + UInt64.random(in: 0...1_000_000, using: &r))")
            }
            entries.append(([uuid] + ranges).joined(separator: ":"))
        }
        let set = try! MySQLGTIDSet(parsing: entries.joined(separator: ","))
        let file =
            chance(&r, 0.6) ? "binlog.\(UInt32.random(in: 1...999_999, using: &r))" : (chance(&r, 0.5) ? text(&r) : nil)
        return MySQLPosition(gtidSet: set, binlogFile: file, binlogOffset: chance(&r, 0.6) ? uint64(&r) : nil)
    }

    static func position<G: RandomNumberGenerator>(_ r: inout G, engine: DatabaseEngine) -> Position {
        switch engine {
        case .postgresql: .postgresql(LSN(uint64(&r)))
        case .mariadb: .mariadb(mariadbList(&r))
        case .mysql: .mysql(mysqlPosition(&r))
        }
    }

    static func image<G: RandomNumberGenerator>(_ r: inout G, _ relation: Relation) -> [Value] {
        relation.columns.map { _ in value(&r) }
    }

    static func change<G: RandomNumberGenerator>(_ r: inout G, _ relation: Relation) -> RowChange {
        switch Int.random(in: 0..<5, using: &r) {
        case 0: RowChange(relation: relation, kind: .insert, new: image(&r, relation))
        case 1:
            RowChange(
                relation: relation, kind: .update, old: Bool.random(using: &r) ? image(&r, relation) : nil,
                new: image(&r, relation), duringCopy: Bool.random(using: &r))
        case 2:
            RowChange(relation: relation, kind: .delete, old: image(&r, relation), duringCopy: Bool.random(using: &r))
        case 3:
            // A copied row carries every column.
            RowChange(relation: relation, kind: .copy, new: image(&r, relation).map { $0.isUnchanged ? .null : $0 })
        default:
            RowChange(
                relation: relation,
                kind: .truncate(cascade: Bool.random(using: &r), restartIdentity: Bool.random(using: &r)))
        }
    }

    static func streamID<G: RandomNumberGenerator>(_ r: inout G) -> StreamID {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        let length = chance(&r, 0.1) ? pick(&r, [1, 64]) : Int.random(in: 1...20, using: &r)
        return StreamID(String((0..<length).map { _ in pick(&r, alphabet) }))!
    }

    static func batch<G: RandomNumberGenerator>(_ r: inout G, maxTransactions: Int = 5, maxChanges: Int = 5) -> Batch {
        let engine = pick(&r, DatabaseEngine.allCases)
        let relations = (0..<Int.random(in: 1...3, using: &r)).map { relation(&r, index: $0) }
        let transactions = (0..<Int.random(in: 1...maxTransactions, using: &r)).map { _ in
            Transaction(
                commitPosition: position(&r, engine: engine), commitTime: timestamp(&r),
                origin: chance(&r, 0.3) ? text(&r) : nil,
                chunk: chance(&r, 0.7) ? .whole : TransactionChunk(index: uint32(&r), isFinal: Bool.random(using: &r)),
                changes: (0..<Int.random(in: 0...maxChanges, using: &r)).map { _ in change(&r, pick(&r, relations)) })
        }
        let sequence = chance(&r, 0.2) ? pick(&r, [1, 2, UInt64.max]) : max(1, uint64(&r))
        return Batch(stream: streamID(&r), sequence: sequence, transactions: transactions)
    }
}

// MARK: - Shrinking

enum Shrinker {
    /// Smaller batches first: fewer transactions, fewer changes, then values
    /// replaced by `.null`. Each candidate is still a batch the encoder accepts.
    static func batch(_ b: Batch) -> [Batch] {
        var out: [Batch] = []
        if b.transactions.count > 1 {
            for i in b.transactions.indices { var c = b; c.transactions.remove(at: i); out.append(c) }
        }
        for t in b.transactions.indices {
            for i in b.transactions[t].changes.indices {
                var c = b; c.transactions[t].changes.remove(at: i); out.append(c)
            }
        }
        for t in b.transactions.indices {
            for i in b.transactions[t].changes.indices {
                for keyPath in [\RowChange.old, \RowChange.new] {
                    guard let image = b.transactions[t].changes[i][keyPath: keyPath] else { continue }
                    for v in image.indices where image[v] != .null {
                        var c = b; c.transactions[t].changes[i][keyPath: keyPath]![v] = .null; out.append(c)
                    }
                }
            }
        }
        return out
    }

    static func value(_ v: Value) -> [Value] {
        switch v {
        case .null: []
        case .array(let elements):
            [.null] + elements
                + elements.indices.map { i in
                    var e = elements; e.remove(at: i); return .array(e)
                }
        default: [.null]
        }
    }
}

extension Gen where Value == Batch {
    static var batch: Generator<Batch, [Batch]> {
        Generator(run: { rng in Arb.batch(&rng) }, shrink: { Shrinker.batch($0) })
    }
}

extension Gen where Value == TandemCore.Value {
    static var value: Generator<TandemCore.Value, [TandemCore.Value]> {
        Generator(run: { rng in Arb.value(&rng) }, shrink: { Shrinker.value($0) })
    }
}
