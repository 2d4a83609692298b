// tandem-bench: release-mode measurements, never run as tests.
//
//   swift build -c release --product tandem-bench && .build/release/tandem-bench codec [options]
//
//   --seconds N        minimum timed seconds per phase and case (default 1)
//   --stream NAME      pgbench | wide | all (default all)
//   --levels LIST      comma-separated: none and/or zstd levels (default none,1,3,6,9)
//   --phase P          encode | decode | both (default both); for profiling one side
//   --clock C          cpu (this thread's CPU time, the default) | wall
//   --stat S           min (fastest pass, the default) | median
//
// To pin it to one core as well, run it under `taskset -c N`.
//
// Encodes + compresses and decompresses + decodes synthetic batch streams on one
// thread and prints throughput and compression ratio per zstd level.
//
// What is timed: only the `BatchEncoder.encode` and `BatchDecoder.decode` calls,
// each call on its own clock reading. The batches and frames they work on are built
// beforehand, and each result is released after its call's clock has stopped (as a
// consumer would after using it), so neither data generation nor the teardown of
// results is counted. A pass runs over the whole stream; after one untimed warm-up
// pass, passes repeat until `--seconds` have been timed (at least five). Reading
// the thread clock costs about 0.3 µs, under 0.3% of the smallest batch's time.
//
// On a shared machine other work can only slow a pass down, never speed it up, so
// the fastest pass is the steadiest estimate of what the codec costs on a core of
// its own; it is the default, `--stat median` shows the typical pass instead. The
// default clock is the thread's CPU time, so time the scheduler gives to other
// processes is not counted either (they can still disturb the caches).
//
// "Raw" bytes are the encoded batch body before compression: the row data as
// Tandem represents it, and the basis of every MB/s figure. "Source text" is the
// size of the same row values in PostgreSQL's text output form, roughly what
// pgoutput would send; it is shown for comparison only.
import SeededRandom
import TandemCodec
import TandemCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

struct Stream {
    var key: String
    var name: String
    var batches: [Batch]
    var rows: Int { batches.reduce(0) { $0 + $1.rowCount } }
}

/// Deterministic generator so runs are comparable.
extension SplitMix64 {
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
    let accounts = Relation(
        name: RelationName(schema: "public", name: "pgbench_accounts"),
        columns: [
            column("aid", int4, "integer", key: true), column("bid", int4, "integer"),
            column("abalance", int4, "integer"), column("filler", .text, "character(84)"),
        ])
    let tellers = Relation(
        name: RelationName(schema: "public", name: "pgbench_tellers"),
        columns: [
            column("tid", int4, "integer", key: true), column("bid", int4, "integer"),
            column("tbalance", int4, "integer"), column("filler", .text, "character(84)"),
        ])
    let branches = Relation(
        name: RelationName(schema: "public", name: "pgbench_branches"),
        columns: [
            column("bid", int4, "integer", key: true), column("bbalance", int4, "integer"),
            column("filler", .text, "character(88)"),
        ])
    let history = Relation(
        name: RelationName(schema: "public", name: "pgbench_history"),
        columns: [
            column("tid", int4, "integer"), column("bid", int4, "integer"), column("aid", int4, "integer"),
            column("delta", int4, "integer"), column("mtime", .timestamp, "timestamp without time zone"),
            column("filler", .text, "character(22)"),
        ])
    let filler = String(repeating: " ", count: 84)
    var rng = SplitMix64(seed: 42)
    var lsn: UInt64 = 0x1_0000_0000
    var time: Int64 = 1_760_000_000_000_000
    var batches: [Batch] = []
    var current: [Transaction] = []
    for _ in 0..<transactions {
        let aid = rng.int(1...1_000_000), tid = rng.int(1...100), bid = rng.int(1...10), delta = rng.int(-5000...5000)
        lsn += UInt64(rng.int(300...700))
        time += rng.int(50...400)
        let changes = [
            RowChange(
                relation: accounts, kind: .update,
                new: [.int(aid), .int(bid), .int(rng.int(-100_000...100_000)), .text(filler)]),
            RowChange(
                relation: tellers, kind: .update, new: [.int(tid), .int(bid), .int(rng.int(-100_000...100_000)), .null]),
            RowChange(
                relation: branches, kind: .update, new: [.int(bid), .int(rng.int(-1_000_000...1_000_000)), .null]),
            RowChange(
                relation: history, kind: .insert,
                new: [
                    .int(tid), .int(bid), .int(aid), .int(delta),
                    .timestamp(Timestamp(microsecondsSinceEpoch: time).utc), .null,
                ]),
        ]
        current.append(
            Transaction(
                commitPosition: .postgresql(LSN(lsn)), commitTime: Timestamp(microsecondsSinceEpoch: time),
                changes: changes))
        if current.count == perBatch {
            batches.append(Batch(stream: stream, sequence: UInt64(batches.count + 1), transactions: current))
            current = []
        }
    }
    if !current.isEmpty {
        batches.append(Batch(stream: stream, sequence: UInt64(batches.count + 1), transactions: current))
    }
    return Stream(key: "pgbench", name: "pgbench (3 updates + 1 insert per tx)", batches: batches)
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
    let words = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima",
    ]
    var rng = SplitMix64(seed: 7)
    var time: Int64 = 1_760_000_000_000_000
    var batches: [Batch] = []
    var current: [Transaction] = []
    for id in 1...rows {
        time += rng.int(10...100)
        var values: [Value] = [.int(Int64(id))]
        for _ in 0..<6 {
            values.append(.decimal(ExactDecimal("\(rng.int(-99_999_999...99_999_999)).\(rng.int(1000...9999))")!))
        }
        for _ in 0..<8 {
            let n = Int(rng.int(2...12))
            values.append(
                .text((0..<n).map { _ in words[Int(rng.next() % UInt64(words.count))] }.joined(separator: " ")))
        }
        for _ in 0..<6 { values.append(.int(rng.int(-2_000_000...2_000_000))) }
        for _ in 0..<4 {
            values.append(.timestampWithZone(Timestamp(microsecondsSinceEpoch: time - rng.int(0...86_400_000_000))))
        }
        for _ in 0..<4 { values.append(.float64(Double(rng.int(-1_000_000...1_000_000)) / 7.0)) }
        values.append(.uuid(UUIDBytes(high: rng.next(), low: rng.next())))
        values.append(.bytes((0..<32).map { _ in UInt8(truncatingIfNeeded: rng.next() % 16) }))
        values.append(.json("{\"id\":\(id),\"tags\":[\"\(words[id % words.count])\"],\"score\":\(rng.int(0...1000))}"))
        current.append(
            Transaction(
                commitPosition: .postgresql(LSN(UInt64(id) * 1000)),
                commitTime: Timestamp(microsecondsSinceEpoch: time),
                changes: [RowChange(relation: relation, kind: .insert, new: values)]))
        if current.count == perBatch {
            batches.append(Batch(stream: stream, sequence: UInt64(batches.count + 1), transactions: current))
            current = []
        }
    }
    if !current.isEmpty {
        batches.append(Batch(stream: stream, sequence: UInt64(batches.count + 1), transactions: current))
    }
    return Stream(key: "wide", name: "wide rows (32 mixed columns)", batches: batches)
}

// MARK: - Source-text size

/// Length of a value in PostgreSQL's text output form (what pgoutput sends for a
/// text-mode column; NULL and unchanged-TOAST columns carry no data).
func sourceTextLength(_ value: Value) -> Int {
    switch value {
    case .null, .unchanged: return 0
    case .bool: return 1
    case .int(let v): return String(v).utf8.count
    case .uint(let v): return String(v).utf8.count
    case .decimal(let d): return d.text.utf8.count
    case .float32(let f): return f.description.utf8.count
    case .float64(let d): return d.description.utf8.count
    case .text(let s), .json(let s), .native(let s): return s.utf8.count
    case .bytes(let b): return 2 + 2 * b.count  // \x followed by hex
    case .date(let d): return d.description.utf8.count
    case .time(let t): return t.description.utf8.count
    case .timeWithZone(let t, _): return t.description.utf8.count + 3
    case .timestamp(let ts): return ts.description.utf8.count
    case .timestampWithZone(let ts): return ts.description.utf8.count
    case .interval(let i): return i.description.utf8.count
    case .uuid: return 36
    case .bits(let b): return b.count
    case .array(let elements): return 2 + max(elements.count - 1, 0) + elements.reduce(0) { $0 + sourceTextLength($1) }
    }
}

func sourceTextBytes(_ stream: Stream) -> Int {
    var total = 0
    for batch in stream.batches {
        for transaction in batch.transactions {
            for change in transaction.changes {
                for value in change.old ?? [] { total += sourceTextLength(value) }
                for value in change.new ?? [] { total += sourceTextLength(value) }
            }
        }
    }
    return total
}

// MARK: - Timing

enum BenchClock: String {
    case cpu, wall

    /// Nanoseconds on this clock.
    func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(self == .cpu ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

/// Times `work` on each item separately, over the whole list per pass: one untimed
/// warm-up pass, then passes until `--seconds` (and at least five passes) have
/// been timed. Each result is released only after the clock has stopped, as a
/// consumer would after using it, so memory is reused the way a streaming capture
/// or apply loop reuses it. Returns the fastest or the median pass time in seconds.
func timePasses<Item, Output>(over items: [Item], options: Options, _ work: (Item) -> Output) -> Double {
    let clock = options.clock
    var sink = 0
    func pass() -> UInt64 {
        var elapsed: UInt64 = 0
        for item in items {
            let start = clock.now()
            let output = work(item)
            elapsed += clock.now() - start
            withExtendedLifetime(output) { sink &+= 1 }
        }
        return elapsed
    }
    _ = pass()
    var samples: [Double] = []
    var total = 0.0
    while total < options.seconds || samples.count < 5 {
        let elapsed = Double(pass()) / 1e9
        samples.append(elapsed)
        total += elapsed
    }
    precondition(sink == items.count * (samples.count + 1))
    samples.sort()
    if options.stat == "min" { return samples[0] }
    let mid = samples.count / 2
    return samples.count % 2 == 1 ? samples[mid] : (samples[mid - 1] + samples[mid]) / 2
}

struct CaseResult {
    var level: String
    var ratio: Double
    var storedBytesPerRow: Double
    var encodeSeconds: Double?
    var decodeSeconds: Double?
}

func measure(_ stream: Stream, compression: BatchCompression, level: Int32, options: Options) throws -> CaseResult {
    let encoder = try BatchEncoder(compression: compression, level: level)
    let decoder = try BatchDecoder()
    let frames = try stream.batches.map { try encoder.encode($0) }
    let stored = frames.reduce(0) { $0 + $1.frame.count }
    // Only work that round-trips counts: every batch is checked, outside the clock.
    for (frame, batch) in zip(frames, stream.batches) {
        let decoded = try decoder.decode(frame.frame)
        precondition(decoded == batch, "codec round trip failed for batch \(batch.sequence)")
    }
    let raw = frames.reduce(0) { $0 + Int($1.header.uncompressedSize) }

    var result = CaseResult(
        level: compression == .none ? "none" : "zstd \(level)", ratio: Double(raw) / Double(stored),
        storedBytesPerRow: Double(stored) / Double(stream.rows))
    if options.phase != "decode" {
        result.encodeSeconds = timePasses(over: stream.batches, options: options) {
            try! encoder.encode($0)
        }
    }
    if options.phase != "encode" {
        result.decodeSeconds = timePasses(over: frames, options: options) {
            try! decoder.decode($0.frame)
        }
    }
    return result
}

// MARK: - Output

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

struct Options {
    var seconds = 1.0
    var streams = "all"
    var levels: [Int32?] = [nil, 1, 3, 6, 9]  // nil = no compression
    var phase = "both"
    var clock = BenchClock.cpu
    var stat = "min"
}

func runCodec(_ options: Options) throws {
    let clockText = options.clock == .cpu ? "thread CPU time" : "wall-clock time"
    let statText = options.stat == "min" ? "fastest pass" : "median pass"
    print(
        "Tandem codec benchmark — one thread, release build, ≥\(options.seconds)s per case, \(statText), \(clockText)")
    print("raw = encoded body before compression (all MB/s figures are raw MB/s); MB = 10^6 bytes")
    print("source text = row values in PostgreSQL text form, roughly what pgoutput sends (for comparison only)\n")
    var streams: [Stream] = []
    if options.streams == "all" || options.streams == "pgbench" {
        streams.append(pgbenchStream(transactions: 40_000, perBatch: 500))
    }
    if options.streams == "all" || options.streams == "wide" { streams.append(wideStream(rows: 40_000, perBatch: 500)) }
    for stream in streams {
        let rows = stream.rows
        let probe = try BatchEncoder(compression: .none)
        let raw = try stream.batches.reduce(0) { $0 + Int(try probe.encode($1).header.uncompressedSize) }
        let source = sourceTextBytes(stream)
        print("## \(stream.name): \(rows) rows in \(stream.batches.count) batches")
        print(
            "raw \(fmt(Double(raw) / Double(rows))) B/row (\(fmt(Double(raw) / 1e6, 2)) MB); source text \(fmt(Double(source) / Double(rows))) B/row (\(fmt(Double(source) / 1e6, 2)) MB)\n"
        )
        print(
            "| compression | ratio | stored B/row | encode+compress MB/s | encode rows/s | decompress+decode MB/s | decode rows/s | encode+compress, source-text MB/s |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for level in options.levels {
            let r = try measure(
                stream, compression: level == nil ? .none : .zstd, level: level ?? BatchEncoder.defaultCompressionLevel,
                options: options)
            func cell(_ bytes: Int, _ seconds: Double?, _ digits: Int = 1, scale: Double = 1e6) -> String {
                guard let seconds else { return "—" }
                return fmt(Double(bytes) / scale / seconds, digits)
            }
            print(
                "| \(r.level) | \(fmt(r.ratio, 2)) | \(fmt(r.storedBytesPerRow)) | \(padLeft(cell(raw, r.encodeSeconds), 7)) | \(padLeft(cell(rows, r.encodeSeconds, 0, scale: 1), 9)) | \(padLeft(cell(raw, r.decodeSeconds), 7)) | \(padLeft(cell(rows, r.decodeSeconds, 0, scale: 1), 9)) | \(padLeft(cell(source, r.encodeSeconds), 7)) |"
            )
        }
        print("")
    }
    print("default level: zstd \(BatchEncoder.defaultCompressionLevel)")
}

func usage() -> Never {
    print(
        "usage: tandem-bench codec [--seconds N] [--stream pgbench|wide|all] [--levels none,1,3,...] [--phase encode|decode|both] [--clock cpu|wall] [--stat min|median]"
    )
    exit(2)
}

var options = Options()
var arguments = Array(CommandLine.arguments.dropFirst())
if arguments.first == "codec" {
    arguments.removeFirst()
} else if let first = arguments.first, !first.hasPrefix("--") {
    usage()
}
while !arguments.isEmpty {
    let flag = arguments.removeFirst()
    guard !arguments.isEmpty else { usage() }
    let value = arguments.removeFirst()
    switch flag {
    case "--seconds":
        guard let seconds = Double(value), seconds > 0 else { usage() }
        options.seconds = seconds
    case "--stream":
        guard ["pgbench", "wide", "all"].contains(value) else { usage() }
        options.streams = value
    case "--levels":
        var levels: [Int32?] = []
        for item in value.split(separator: ",") {
            if item == "none" {
                levels.append(nil)
            } else if let level = Int32(item) {
                levels.append(level)
            } else {
                usage()
            }
        }
        options.levels = levels
    case "--phase":
        guard ["encode", "decode", "both"].contains(value) else { usage() }
        options.phase = value
    case "--stat":
        guard ["min", "median"].contains(value) else { usage() }
        options.stat = value
    case "--clock":
        guard let clock = BenchClock(rawValue: value) else { usage() }
        options.clock = clock
    default:
        usage()
    }
}
try runCodec(options)
