// tandem-bench: release-mode measurements, never run as tests.
//
//   swift run -c release tandem-bench codec [--seconds N]
//
// Encodes + compresses and decompresses + decodes synthetic batch streams on one
// core and prints throughput and compression ratio per zstd level. "Raw" bytes are
// the encoded batch body before compression: the row data as Tandem represents it.
import TandemCodec
import TandemCore

#if canImport(Glibc)
import Glibc
#endif

struct Stream {
    var name: String
    var batches: [Batch]
    var rows: Int { batches.reduce(0) { $0 + $1.rowCount } }
}

/// Deterministic generator so runs are comparable.
struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func int(_ range: ClosedRange<Int64>) -> Int64 {
        range.lowerBound + Int64(next() % UInt64(range.upperBound - range.lowerBound + 1))
    }
}

func column(_ name: String, _ type: LogicalType, _ native: String, key: Bool = false) -> Column {
    Column(name: name, type: type, nativeType: native, isKey: key, isNullable: !key)
}

let stream = StreamID("bench")!

/// pgbench's TPC-B-like transaction: update accounts, tellers, branches; insert history.
func pgbenchStream(transactions: Int, perBatch: Int) -> Stream {
    let int4 = LogicalType.integer(bits: 32, signed: true)
    let accounts = Relation(name: RelationName(schema: "public", name: "pgbench_accounts"), columns: [
        column("aid", int4, "integer", key: true), column("bid", int4, "integer"),
        column("abalance", int4, "integer"), column("filler", .text, "character(84)"),
    ])
    let tellers = Relation(name: RelationName(schema: "public", name: "pgbench_tellers"), columns: [
        column("tid", int4, "integer", key: true), column("bid", int4, "integer"),
        column("tbalance", int4, "integer"), column("filler", .text, "character(84)"),
    ])
    let branches = Relation(name: RelationName(schema: "public", name: "pgbench_branches"), columns: [
        column("bid", int4, "integer", key: true), column("bbalance", int4, "integer"),
        column("filler", .text, "character(88)"),
    ])
    let history = Relation(name: RelationName(schema: "public", name: "pgbench_history"), columns: [
        column("tid", int4, "integer"), column("bid", int4, "integer"), column("aid", int4, "integer"),
        column("delta", int4, "integer"), column("mtime", .timestamp, "timestamp without time zone"),
        column("filler", .text, "character(22)"),
    ])
    let filler = String(repeating: " ", count: 84)
    var rng = SplitMix(state: 42)
    var lsn: UInt64 = 0x1_0000_0000
    var time: Int64 = 1_760_000_000_000_000
    var batches: [Batch] = []
    var current: [Transaction] = []
    for _ in 0..<transactions {
        let aid = rng.int(1...1_000_000), tid = rng.int(1...100), bid = rng.int(1...10), delta = rng.int(-5000...5000)
        lsn += UInt64(rng.int(300...700))
        time += rng.int(50...400)
        let changes = [
            RowChange(relation: accounts, kind: .update, new: [.int(aid), .int(bid), .int(rng.int(-100_000...100_000)), .text(filler)]),
            RowChange(relation: tellers, kind: .update, new: [.int(tid), .int(bid), .int(rng.int(-100_000...100_000)), .null]),
            RowChange(relation: branches, kind: .update, new: [.int(bid), .int(rng.int(-1_000_000...1_000_000)), .null]),
            RowChange(relation: history, kind: .insert, new: [
                .int(tid), .int(bid), .int(aid), .int(delta),
                .timestamp(Timestamp(microsecondsSinceEpoch: time).utc), .null,
            ]),
        ]
        current.append(Transaction(commitPosition: .postgresql(LSN(lsn)), commitTime: Timestamp(microsecondsSinceEpoch: time), changes: changes))
        if current.count == perBatch {
            batches.append(Batch(stream: stream, sequence: UInt64(batches.count + 1), transactions: current))
            current = []
        }
    }
    if !current.isEmpty { batches.append(Batch(stream: stream, sequence: UInt64(batches.count + 1), transactions: current)) }
    return Stream(name: "pgbench (3 updates + 1 insert per tx)", batches: batches)
}

/// Wide rows: 32 columns of mixed exact types, one insert per transaction.
func wideStream(rows: Int, perBatch: Int) -> Stream {
    var columns: [Column] = [column("id", .integer(bits: 64, signed: true), "bigint", key: true)]
    for i in 0..<6 { columns.append(column("n\(i)", .decimal(precision: 20, scale: 4), "numeric(20,4)")) }
    for i in 0..<8 { columns.append(column("t\(i)", .text, "text")) }
    for i in 0..<6 { columns.append(column("i\(i)", .integer(bits: 32, signed: true), "integer")) }
    for i in 0..<4 { columns.append(column("ts\(i)", .timestampWithZone, "timestamptz")) }
    for i in 0..<4 { columns.append(column("f\(i)", .float64, "double precision")) }
    columns.append(column("u", .uuid, "uuid"))
    columns.append(column("b", .binary, "bytea"))
    columns.append(column("j", .json, "jsonb"))
    let relation = Relation(name: RelationName(schema: "app", name: "wide"), columns: columns)
    let words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima"]
    var rng = SplitMix(state: 7)
    var time: Int64 = 1_760_000_000_000_000
    var batches: [Batch] = []
    var current: [Transaction] = []
    for id in 1...rows {
        time += rng.int(10...100)
        var values: [Value] = [.int(Int64(id))]
        for _ in 0..<6 { values.append(.decimal(ExactDecimal("\(rng.int(-99_999_999...99_999_999)).\(rng.int(1000...9999))")!)) }
        for _ in 0..<8 {
            let n = Int(rng.int(2...12))
            values.append(.text((0..<n).map { _ in words[Int(rng.next() % UInt64(words.count))] }.joined(separator: " ")))
        }
        for _ in 0..<6 { values.append(.int(rng.int(-2_000_000...2_000_000))) }
        for _ in 0..<4 { values.append(.timestampWithZone(Timestamp(microsecondsSinceEpoch: time - rng.int(0...86_400_000_000)))) }
        for _ in 0..<4 { values.append(.float64(Double(rng.int(-1_000_000...1_000_000)) / 7.0)) }
        values.append(.uuid(UUIDBytes(high: rng.next(), low: rng.next())))
        values.append(.bytes((0..<32).map { _ in UInt8(truncatingIfNeeded: rng.next() % 16) }))
        values.append(.json("{\"id\":\(id),\"tags\":[\"\(words[id % words.count])\"],\"score\":\(rng.int(0...1000))}"))
        current.append(Transaction(commitPosition: .postgresql(LSN(UInt64(id) * 1000)), commitTime: Timestamp(microsecondsSinceEpoch: time),
                                   changes: [RowChange(relation: relation, kind: .insert, new: values)]))
        if current.count == perBatch {
            batches.append(Batch(stream: stream, sequence: UInt64(batches.count + 1), transactions: current))
            current = []
        }
    }
    if !current.isEmpty { batches.append(Batch(stream: stream, sequence: UInt64(batches.count + 1), transactions: current)) }
    return Stream(name: "wide rows (32 mixed columns)", batches: batches)
}

func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

struct Result {
    var level: String
    var rawMB: Double
    var ratio: Double
    var encodeMBps: Double
    var encodeRowsPerSecond: Double
    var decodeMBps: Double
    var decodeRowsPerSecond: Double
}

func measure(_ stream: Stream, compression: BatchCompression, level: Int32, minimumSeconds: Double) throws -> Result {
    let encoder = try BatchEncoder(compression: compression, level: level)
    let decoder = try BatchDecoder()
    let frames = try stream.batches.map { try encoder.encode($0) }
    let raw = frames.reduce(0) { $0 + Int($1.header.uncompressedSize) }
    let stored = frames.reduce(0) { $0 + $1.frame.count }
    // Sanity: the benchmark only counts work that round-trips.
    let roundTrip = try decoder.decode(frames[0].frame)
    precondition(roundTrip == stream.batches[0], "codec round trip failed")

    let clock = ContinuousClock()
    var passes = 0
    var sink = 0
    var encodeElapsed = 0.0
    while encodeElapsed < minimumSeconds {
        encodeElapsed += seconds(clock.measure {
            for batch in stream.batches { sink &+= (try! encoder.encode(batch)).frame.count }
        })
        passes += 1
    }
    var decodePasses = 0
    var decodeElapsed = 0.0
    while decodeElapsed < minimumSeconds {
        decodeElapsed += seconds(clock.measure {
            for frame in frames { sink &+= (try! decoder.decode(frame.frame)).transactions.count }
        })
        decodePasses += 1
    }
    if sink == 42 { print("") }
    let rawMB = Double(raw) / 1e6
    return Result(
        level: compression == .none ? "none" : "zstd \(level)", rawMB: rawMB, ratio: Double(raw) / Double(stored),
        encodeMBps: rawMB * Double(passes) / encodeElapsed,
        encodeRowsPerSecond: Double(stream.rows * passes) / encodeElapsed,
        decodeMBps: rawMB * Double(decodePasses) / decodeElapsed,
        decodeRowsPerSecond: Double(stream.rows * decodePasses) / decodeElapsed)
}

func fmt(_ value: Double, _ digits: Int = 1) -> String {
    var text = String(Int((value * pow(10, Double(digits))).rounded()))
    if digits > 0 {
        while text.count <= digits { text = "0" + text }
        text.insert(".", at: text.index(text.endIndex, offsetBy: -digits))
    }
    return text
}

func padLeft(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
}

func runCodec(secondsPerCase: Double) throws {
    print("Tandem codec benchmark — one core, release build, \(secondsPerCase)s per case")
    print("raw = encoded body before compression; MB = 10^6 bytes\n")
    for stream in [pgbenchStream(transactions: 40_000, perBatch: 500), wideStream(rows: 40_000, perBatch: 500)] {
        print("## \(stream.name): \(stream.rows) rows in \(stream.batches.count) batches")
        print("| compression | ratio | encode+compress MB/s | encode rows/s | decompress+decode MB/s | decode rows/s |")
        print("|---|---:|---:|---:|---:|---:|")
        var cases: [(BatchCompression, Int32)] = [(.none, 0)]
        for level in [1, 3, 6, 9] as [Int32] { cases.append((.zstd, level)) }
        for (compression, level) in cases {
            let r = try measure(stream, compression: compression, level: level, minimumSeconds: secondsPerCase)
            print("| \(r.level) | \(fmt(r.ratio, 2)) | \(padLeft(fmt(r.encodeMBps), 7)) | \(padLeft(fmt(r.encodeRowsPerSecond, 0), 9)) | \(padLeft(fmt(r.decodeMBps), 7)) | \(padLeft(fmt(r.decodeRowsPerSecond, 0), 9)) |")
        }
        print("")
    }
    print("default level: zstd \(BatchEncoder.defaultCompressionLevel)")
}

let arguments = Array(CommandLine.arguments.dropFirst())
var secondsPerCase = 1.0
if let index = arguments.firstIndex(of: "--seconds"), index + 1 < arguments.count, let value = Double(arguments[index + 1]) {
    secondsPerCase = value
}
switch arguments.first {
case "codec", nil:
    try runCodec(secondsPerCase: secondsPerCase)
default:
    print("usage: tandem-bench codec [--seconds N]")
    exit(2)
}
