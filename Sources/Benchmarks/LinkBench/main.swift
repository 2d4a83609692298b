// tandem-linkbench: release-mode measurements of the link (never a timed test).
//
//   tandem-linkbench                 run every case and print markdown tables
//   tandem-linkbench receive …       one receiving side (child process)
//   tandem-linkbench send …          one sending side (child process)
//   tandem-linkbench delayline …     packet delay line on a TUN device (child, WAN case)
//
// Each side of a measured stream runs in its own child process, so getrusage(RUSAGE_SELF)
// in that process is the CPU time of that side alone (all its threads, user + system). The
// parent only orchestrates and prints. See appliance/bench-link.
//
// The cases:
// 1. TLS link alone: TLSDialer → TLSListener on 127.0.0.1, BATCH frames (LinkFrameEncoder's
//    batch prefix + a real, uncompressed batch frame), blocking write/read, an ACK frame back
//    per read and a flow-control window like the session's. The sender's clock stops at the
//    ACK of the last batch.
// 2. The same with the receiver appending every group of received frames to a real Spool
//    (one pwrite + one fdatasync per group) before acknowledging them.
// 3. Two agent processes (`tandem-test-agent`, next to this one: the agent as `tandem agent`
//    starts it, with a synthetic source and sink) : batches/s for a fixed count.
// 4. As root: namespaces a —veth— r —veth— b, tbf 100 Mbit/s on the a and b egress, and every
//    packet r forwards held 40 ms by a TUN delay line (`delayline`, below) — netem is not in
//    this kernel, and a packet-level delay (unlike a TCP proxy) lets TCP see the real 80 ms
//    round trip. Link utilisation = batch payload rate ÷ 100 Mbit/s.
import Foundation
import Synchronization
import TLSSupport
import TandemCodec
import TandemCore
import TandemLink
import TandemSpool
import TandemTransport

#if canImport(Glibc)
    import Glibc
#endif

signal(SIGPIPE, SIG_IGN)

// MARK: - Small helpers

/// Writes a line to stdout at once (no stdio buffering: children talk to the parent through a pipe).
func say(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes[offset...].withUnsafeBytes { write(1, $0.baseAddress!, $0.count) }
        if written <= 0 { return }
        offset += written
    }
}

func monotonic() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}

/// User + system CPU seconds of this process, all threads.
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
}

/// prctl(2), which Swift does not import (it is variadic).
func processControl(_ option: Int32, _ value: UInt) {
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "prctl") else { return }
    typealias Prctl = @convention(c) (Int32, UInt, UInt, UInt, UInt) -> Int32
    _ = unsafeBitCast(symbol, to: Prctl.self)(option, value, 0, 0, 0)
}

/// Child commands end with the parent (PR_SET_PDEATHSIG), so an interrupted run
/// leaves no sender, receiver or delay line behind.
func dieWithParent() {
    processControl(1, UInt(SIGKILL))
    if getppid() == 1 { exit(1) }
}

/// Namespaces the WAN case has made and not yet deleted; removed on SIGINT/SIGTERM too.
let liveNamespaces = Mutex<[String]>([])

func deleteNamespaces() {
    let names = liveNamespaces.withLock { names -> [String] in
        defer { names = [] }
        return names
    }
    for name in names { _ = try? command(ipTool, ["netns", "del", name]) }
}

struct BenchFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("tandem-linkbench: \(message)\n".utf8))
    exit(1)
}

/// `--name value` options of a child command.
struct Options {
    var values: [String: String] = [:]
    init(_ arguments: ArraySlice<String>) {
        var iterator = arguments.makeIterator()
        while let key = iterator.next() {
            guard key.hasPrefix("--") else { fail("unexpected argument \(key)") }
            values[String(key.dropFirst(2))] = iterator.next() ?? ""
        }
    }
    func string(_ key: String) -> String {
        guard let value = values[key] else { fail("missing --\(key)") }
        return value
    }
    func int(_ key: String, default fallback: Int? = nil) -> Int {
        if let value = values[key] {
            guard let number = Int(value) else { fail("--\(key) wants a number") }
            return number
        }
        guard let fallback else { fail("missing --\(key)") }
        return fallback
    }
    func double(_ key: String, default fallback: Double) -> Double { values[key].flatMap { Double($0) } ?? fallback }
}

/// A result line a child prints: `RESULT key=value …`.
func resultLine(_ fields: [(String, Double)]) -> String {
    "RESULT " + fields.map { "\($0.0)=\($0.1)" }.joined(separator: " ")
}

func parseResult(_ text: String) -> [String: Double]? {
    guard let line = text.split(separator: "\n").last(where: { $0.hasPrefix("RESULT ") }) else { return nil }
    var fields: [String: Double] = [:]
    for pair in line.dropFirst(7).split(separator: " ") {
        let parts = pair.split(separator: "=", maxSplits: 1)
        if parts.count == 2, let value = Double(parts[1]) { fields[String(parts[0])] = value }
    }
    return fields
}

let benchStream = StreamID("bench-idc")!
let senderSite = "idc"
let receiverSite = "cloud"

/// A real batch frame (uncompressed body, so its size is what was asked for) of one
/// transaction with one row carrying `payloadBytes` of text.
final class FrameMaker {
    private let encoder: BatchEncoder
    private let payload: String
    private let relation = Relation(
        name: RelationName(schema: "bench", name: "link"),
        columns: [
            Column(
                name: "id", type: .integer(bits: 64, signed: true), nativeType: "bigint", isKey: true,
                isNullable: false),
            Column(name: "payload", type: .text, nativeType: "text"),
        ])

    init(payloadBytes: Int) throws {
        encoder = try BatchEncoder(compression: .none)
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789".utf8)
        let bytes = (0..<payloadBytes).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] }
        payload = String(decoding: bytes, as: UTF8.self)
    }

    func frame(sequence: UInt64) throws -> [UInt8] {
        let transaction = Transaction(
            commitPosition: .postgresql(LSN(sequence &* 4096)),
            commitTime: Timestamp(microsecondsSinceEpoch: 1_700_000_000_000_000 + Int64(sequence)),
            changes: [RowChange(relation: relation, kind: .insert, new: [.int(Int64(sequence)), .text(payload)])])
        return try encoder.encode(Batch(stream: benchStream, sequence: sequence, transactions: [transaction])).frame
    }
}

func contexts(pki: String, role: TLSRole) throws -> TLSContext {
    let layout = PairLayout(directory: pki)
    let site = role == .server ? receiverSite : senderSite
    return try TLSContext(
        role: role, caFile: layout.siteCA(site), certificateFile: layout.siteCertificate(site),
        keyFile: layout.siteKey(site))
}

// MARK: - receive (child)

/// Frames handed from the reader thread to the spool thread (spool mode).
final class FrameQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private var frames: [(UInt64, [UInt8])] = []
    private var bytes = 0
    private var ended = false
    private let limitBytes: Int

    init(limitBytes: Int) { self.limitBytes = limitBytes }

    func put(_ items: [(UInt64, [UInt8])], itemBytes: Int) {
        condition.lock()
        while bytes > limitBytes { condition.wait() }
        frames += items
        bytes += itemBytes
        condition.broadcast()
        condition.unlock()
    }

    func end() {
        condition.lock()
        ended = true
        condition.broadcast()
        condition.unlock()
    }

    /// Everything queued (nil once ended and empty).
    func takeAll() -> [(UInt64, [UInt8])]? {
        condition.lock()
        defer { condition.unlock() }
        while frames.isEmpty && !ended { condition.wait() }
        if frames.isEmpty { return nil }
        let taken = frames
        frames = []
        bytes = 0
        condition.broadcast()
        return taken
    }
}

/// Writes all of `bytes` (through a copy: a typed-throws closure inside
/// `withUnsafeBytes` crashes the 6.3 optimizer here).
func writeBytes(_ connection: TLSConnection, _ bytes: [UInt8]) throws {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 16)
    defer { buffer.deallocate() }
    buffer.copyBytes(from: bytes)
    try connection.write(UnsafeRawBufferPointer(buffer))
}

/// Writes ACK frames (the highest batch held) to the sender; used by one thread at a time.
final class AckWriter: Sendable {
    let connection: TLSConnection
    let encoder = LinkFrameEncoder()

    init(connection: TLSConnection) { self.connection = connection }

    func send(_ sequence: UInt64) throws {
        let ack = try encoder.encode(.ack(LinkAck(durable: sequence, applied: 0)))
        try writeBytes(connection, ack)
    }
}

func runReceiver(_ options: Options) throws {
    let pki = options.string("pki")
    let mode = options.values["mode"] ?? "link"
    let listener = try TLSListener(
        host: options.values["listen"] ?? "127.0.0.1", port: options.int("port", default: 0),
        context: try contexts(pki: pki, role: .server), peerSite: senderSite)
    say("LISTENING \(listener.localPort)")
    let connection = try listener.acceptBlocking()
    let acks = AckWriter(connection: connection)

    var spool: Spool?
    var spoolDirectory = ""
    if mode == "spool" {
        spoolDirectory = options.string("spool")
        spool = try Spool.open(directory: spoolDirectory, stream: benchStream)
    }
    let queue = FrameQueue(limitBytes: 64 * 1024 * 1024)
    let syncs = Atomic<Int>(0)
    let spoolFailure = Mutex<String?>(nil)
    let spoolDone = NSCondition()
    nonisolated(unsafe) var spoolFinished = spool == nil
    if let spool {
        let thread = Thread {
            while let group = queue.takeAll() {
                do {
                    let durable = try spool.append(group.map(\.1))
                    syncs.add(1, ordering: .relaxed)
                    try acks.send(durable)
                } catch {
                    spoolFailure.withLock { $0 = "\(error)" }
                    break
                }
            }
            spoolDone.lock()
            spoolFinished = true
            spoolDone.broadcast()
            spoolDone.unlock()
        }
        thread.name = "bench-spool"
        thread.start()
    }

    let capacity = 8 * 1024 * 1024
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
    defer { buffer.deallocate() }
    var start = 0, end = 0
    var expected: UInt64 = 1
    var bytes = 0, batches = 0
    var firstByte = 0.0
    var cpuStart = 0.0
    var sawEnd = false
    // Link mode may leave frames in the read buffer (measures the transport alone).
    let copyOut = mode == "spool" || options.values["copy"] == "yes"
    var lastInPlace: UInt64 = 0
    // Link mode acks after every read that completed a frame, or (--ack-bytes) less often.
    let ackEveryBytes = options.int("ack-bytes", default: 0)
    var ackedAtBytes = 0
    reading: while true {
        if capacity - end < 1024 * 1024 {
            if end > start { memmove(buffer, buffer + start, end - start) }
            end -= start
            start = 0
        }
        let count = try connection.read(into: UnsafeMutableRawBufferPointer(start: buffer + end, count: capacity - end))
        if count == 0 { break }
        if firstByte == 0 {
            firstByte = monotonic()
            cpuStart = processCPUSeconds()
        }
        end += count
        var group: [(UInt64, [UInt8])] = []
        var groupBytes = 0
        while end - start >= 4 {
            let length = Int(UInt32(littleEndian: (buffer + start).loadUnaligned(as: UInt32.self)))
            guard end - start >= 4 + length else { break }
            let kind = (buffer + start + 4).load(as: UInt8.self)
            if kind == LinkMessageKind.batch.rawValue {
                let sequence = UInt64(littleEndian: (buffer + start + 5).loadUnaligned(as: UInt64.self))
                guard sequence == expected else {
                    throw BenchFailure("batch \(sequence) arrived, expected \(expected)")
                }
                expected += 1
                let frameLength = length - 9
                bytes += frameLength
                batches += 1
                groupBytes += frameLength
                if copyOut {
                    // What a real receiver does: the frame leaves the read buffer as an array of its own.
                    group.append(
                        (sequence, [UInt8](UnsafeRawBufferPointer(start: buffer + start + 13, count: frameLength))))
                } else {
                    lastInPlace = sequence
                }
            } else if kind == LinkMessageKind.heartbeat.rawValue {
                sawEnd = true  // the sender's end-of-run marker
            }
            start += 4 + length
        }
        if !copyOut, lastInPlace > 0, bytes - ackedAtBytes >= ackEveryBytes {
            try acks.send(lastInPlace)
            lastInPlace = 0
            ackedAtBytes = bytes
        }
        if !group.isEmpty {
            if spool != nil {
                queue.put(group, itemBytes: groupBytes)
            } else {
                try acks.send(group.last!.0)
            }
        }
        if sawEnd { break reading }
    }
    queue.end()
    spoolDone.lock()
    while !spoolFinished { spoolDone.wait() }
    spoolDone.unlock()
    let finished = monotonic()
    let cpu = processCPUSeconds() - cpuStart
    if let problem = spoolFailure.withLock({ $0 }) { throw BenchFailure("spool append failed: \(problem)") }
    // Final ack after everything is durable; the sender's clock stops when it arrives.
    try acks.send(expected - 1)
    say(
        resultLine([
            ("bytes", Double(bytes)), ("batches", Double(batches)), ("seconds", finished - firstByte),
            ("cpu", cpu), ("syncs", Double(syncs.load(ordering: .relaxed))),
        ]))
    // Wait for the sender to hang up, so the final ack is not cut by our close.
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
    defer { scratch.deallocate() }
    let _: Int? = try? connection.read(into: scratch)
    connection.close()
    spool?.close()
    if !spoolDirectory.isEmpty { try? FileManager.default.removeItem(atPath: spoolDirectory) }
}

// MARK: - send (child)

func runSender(_ options: Options) throws {
    let payload = options.int("payload")
    let seconds = options.double("seconds", default: 3)
    let warmup = options.double("warmup", default: 0)
    let window = options.int("window", default: LinkSession.Configuration.defaultWindowBytes)
    let fresh = options.values["frames"] == "spool"  // a real frame per sequence (the spool checks them)
    let maker = try FrameMaker(payloadBytes: payload)
    let template = try maker.frame(sequence: 1)
    let dialer = TLSDialer(context: try contexts(pki: options.string("pki"), role: .client), peerSite: receiverSite)
    let connection = try dialer.connectBlocking(host: options.string("host"), port: options.int("port"))

    // Acks: the highest batch the receiver holds (durable, in spool mode).
    let acked = Mutex<UInt64>(0)
    let ackCondition = NSCondition()
    let reader = Thread {
        var decoder = LinkFrameDecoder()
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
        defer { chunk.deallocate() }
        while true {
            let count = (try? connection.read(into: chunk)) ?? 0
            if count == 0 { break }
            guard let messages = try? decoder.decode(UnsafeRawBufferPointer(rebasing: chunk[0..<count])) else { break }
            for case .ack(let ack) in messages {
                ackCondition.lock()
                acked.withLock { $0 = max($0, ack.durable) }
                ackCondition.broadcast()
                ackCondition.unlock()
            }
        }
        ackCondition.lock()
        acked.withLock { $0 = UInt64.max }  // connection ended: release the waiter
        ackCondition.broadcast()
        ackCondition.unlock()
    }
    reader.name = "bench-acks"
    reader.start()

    let prefixEncoder = LinkFrameEncoder()
    let outCapacity = template.count + 1024
    let out = UnsafeMutableRawPointer.allocate(byteCount: outCapacity, alignment: 16)
    defer { out.deallocate() }
    var cumulative: [Int] = [0]  // bytes of batches 1…n
    var sequence: UInt64 = 0
    let cpuStart = processCPUSeconds()
    let started = monotonic()
    var warmMark: (time: Double, bytes: Int)?
    while monotonic() - started < seconds {
        sequence += 1
        let frame = fresh ? try maker.frame(sequence: sequence) : template
        let prefix = try prefixEncoder.batchPrefix(sequence: sequence, frameLength: frame.count)
        let total = prefix.count + frame.count
        precondition(total <= outCapacity)
        prefix.withUnsafeBytes { out.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        frame.withUnsafeBytes { (out + prefix.count).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        cumulative.append(cumulative.last! + frame.count)
        // Flow control: at most `window` bytes sent and not yet acknowledged.
        ackCondition.lock()
        while true {
            let done = acked.withLock { $0 }
            if done == UInt64.max { ackCondition.unlock(); throw BenchFailure("the receiver hung up") }
            if warmMark == nil, warmup > 0, monotonic() - started >= warmup {
                warmMark = (monotonic(), cumulative[Int(min(done, sequence - 1))])
            }
            if cumulative[Int(sequence)] - cumulative[Int(min(done, sequence - 1))] <= window { break }
            _ = ackCondition.wait(until: Date().addingTimeInterval(0.05))
        }
        ackCondition.unlock()
        try connection.write(UnsafeRawBufferPointer(start: out, count: total))
    }
    // End-of-run marker, then wait for the receiver to hold the last batch.
    let marker = try prefixEncoder.encode(
        .heartbeat(
            LinkHeartbeat(
                monotonicMicroseconds: 0, wallClock: Timestamp(microsecondsSinceEpoch: 0))))
    try writeBytes(connection, marker)
    ackCondition.lock()
    while acked.withLock({ $0 }) < sequence { ackCondition.wait() }
    ackCondition.unlock()
    let finished = monotonic()
    let cpu = processCPUSeconds() - cpuStart
    let bytes = cumulative[Int(sequence)]
    var fields: [(String, Double)] = [
        ("bytes", Double(bytes)), ("batches", Double(sequence)),
        ("seconds", finished - started), ("cpu", cpu), ("frame", Double(template.count)),
    ]
    if let warmMark {
        fields += [("steadyBytes", Double(bytes - warmMark.bytes)), ("steadySeconds", finished - warmMark.time)]
    }
    say(resultLine(fields))
    connection.close()
}

// MARK: - delayline (child, WAN case)

/// Holds every packet routed through a TUN device for a fixed time, then injects it
/// back, in arrival order. Runs in the router namespace until killed.
func runDelayLine(_ options: Options) throws {
    let name = options.string("tun")
    let delay = Double(options.int("delay-ms")) / 1000
    let descriptor = open("/dev/net/tun", O_RDWR | O_CLOEXEC)
    guard descriptor >= 0 else { throw BenchFailure("cannot open /dev/net/tun: \(String(cString: strerror(errno)))") }
    var request = [UInt8](repeating: 0, count: 40)  // struct ifreq: name[16], flags (short)
    for (index, byte) in name.utf8.prefix(15).enumerated() { request[index] = byte }
    let flags: Int16 = 0x0001 | 0x1000  // IFF_TUN | IFF_NO_PI
    withUnsafeBytes(of: flags.littleEndian) { for i in 0..<2 { request[16 + i] = $0[i] } }
    let tunsetiff: UInt = 0x4004_54CA
    let status = request.withUnsafeMutableBytes { ioctl(descriptor, tunsetiff, $0.baseAddress!) }
    guard status == 0 else { throw BenchFailure("TUNSETIFF \(name): \(String(cString: strerror(errno)))") }

    // The emulator must not be what limits the link: real-time priority keeps a busy machine
    // from holding packets longer than asked (threads created below inherit it).
    var priority = sched_param(sched_priority: 10)
    let realTime = sched_setscheduler(0, SCHED_FIFO, &priority) == 0
    // How late packets left (beyond the delay), for the report.
    let packets = Atomic<Int>(0)
    let lateOverMillisecond = Atomic<Int>(0)
    let worstLateMicroseconds = Atomic<Int>(0)

    let condition = NSCondition()
    nonisolated(unsafe) var queue: [(due: Double, packet: [UInt8])] = []
    nonisolated(unsafe) var head = 0
    let writer = Thread {
        processControl(29, 1)  // PR_SET_TIMERSLACK 1 ns: wake on time, not up to 50 µs late
        var due: [[UInt8]] = []
        while true {
            condition.lock()
            while head == queue.count { condition.wait() }
            let wait = queue[head].due - monotonic()
            if wait > 0 {
                condition.unlock()
                usleep(UInt32(wait * 1e6))
                continue
            }
            // Everything that is due leaves now, in arrival order.
            let now = monotonic()
            while head < queue.count, queue[head].due <= now {
                let late = Int((now - queue[head].due) * 1e6)
                if late > 1000 { lateOverMillisecond.add(1, ordering: .relaxed) }
                if late > worstLateMicroseconds.load(ordering: .relaxed) {
                    worstLateMicroseconds.store(late, ordering: .relaxed)
                }
                due.append(queue[head].packet)
                head += 1
            }
            packets.add(due.count, ordering: .relaxed)
            if head > 4096, head * 2 > queue.count {
                queue.removeFirst(head)
                head = 0
            }
            condition.unlock()
            for packet in due {
                _ = packet.withUnsafeBytes { write(descriptor, $0.baseAddress!, $0.count) }
            }
            due.removeAll(keepingCapacity: true)
        }
    }
    writer.name = "delay-writer"
    writer.start()
    let reporter = Thread {
        while true {
            usleep(250_000)
            say(
                "STATS packets=\(packets.load(ordering: .relaxed)) late1ms=\(lateOverMillisecond.load(ordering: .relaxed)) worstLateUs=\(worstLateMicroseconds.load(ordering: .relaxed)) realtime=\(realTime ? 1 : 0)"
            )
        }
    }
    reporter.start()
    say("READY")
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress!, $0.count) }
        if count <= 0 {
            if count < 0 && errno == EINTR { continue }
            throw BenchFailure("reading \(name): \(String(cString: strerror(errno)))")
        }
        let packet = Array(buffer[0..<count])
        condition.lock()
        queue.append((monotonic() + delay, packet))
        condition.signal()
        condition.unlock()
    }
}

// MARK: - Orchestration (parent)

let executablePath = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
let binDirectory = URL(fileURLWithPath: executablePath).deletingLastPathComponent().path

/// A child process with its stdout collected (stderr passes through).
final class Child: @unchecked Sendable {
    let process = Process()
    private let pipe = Pipe()
    private let lock = NSCondition()
    private var text = ""
    private var closed = false

    init(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil,
        directory: String? = nil, errorLog: String? = nil
    ) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        if let errorLog {
            _ = FileManager.default.createFile(atPath: errorLog, contents: nil)
            process.standardError = FileHandle(forWritingAtPath: errorLog)
        }
        process.arguments = arguments
        if let environment { process.environment = environment }
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        process.standardOutput = pipe
        let handle = pipe.fileHandleForReading
        try process.run()
        let thread = Thread { [self] in
            while true {
                let data = handle.availableData
                lock.lock()
                if data.isEmpty { closed = true } else { text += String(decoding: data, as: UTF8.self) }
                lock.broadcast()
                lock.unlock()
                if data.isEmpty { return }
            }
        }
        thread.start()
    }

    /// Waits until stdout holds a line starting with `prefix`; returns it.
    func waitForLine(_ prefix: String, timeout: Double) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        lock.lock()
        defer { lock.unlock() }
        while true {
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) { return String(line) }
            if closed || !lock.wait(until: deadline) { return nil }
        }
    }

    /// The newest stdout line starting with `prefix`, without waiting.
    func lastLine(_ prefix: String) -> String? {
        lock.lock()
        defer { lock.unlock() }
        return text.split(separator: "\n").last(where: { $0.hasPrefix(prefix) }).map(String.init)
    }

    /// Waits for the exit and the end of stdout; the output.
    func finish(timeout: Double) -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            process.terminate()
            usleep(200_000)
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        lock.lock()
        while !closed { _ = lock.wait(until: Date().addingTimeInterval(1)) }
        defer { lock.unlock() }
        return text
    }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// CPU seconds of the whole machine so far (/proc/stat): busy in this VM (user, nice, system,
/// irq, softirq) and stolen by the hypervisor (the vCPU was not running at all).
func machineCPUSeconds() -> (busy: Double, steal: Double) {
    guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
        let line = text.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") })
    else { return (0, 0) }
    let fields = line.split(separator: " ").dropFirst().compactMap { Double($0) }
    guard fields.count >= 8 else { return (0, 0) }
    let tick = Double(sysconf(Int32(_SC_CLK_TCK)))
    return ((fields[0] + fields[1] + fields[2] + fields[5] + fields[6]) / tick, fields[7] / tick)
}

struct StreamResult {
    var sender: [String: Double]
    var receiver: [String: Double]
    /// CPU cores kept busy by everything else on the machine during the run.
    var otherCores: Double = 0
    /// CPU cores the hypervisor took away during the run.
    var stealCores: Double = 0
    var megabytesPerSecond: Double { sender["bytes"]! / sender["seconds"]! / 1e6 }
    var batchesPerSecond: Double { sender["batches"]! / sender["seconds"]! }
    var senderCPUPerGB: Double { sender["cpu"]! / (sender["bytes"]! / 1e9) }
    var receiverCPUPerGB: Double { receiver["cpu"]! / (receiver["bytes"]! / 1e9) }
}

/// One stream between a receiving and a sending child; `wrap*` prefix a command
/// (`ip netns exec NS`) when the sides run in network namespaces.
func runStream(
    pki: String, payload: Int, seconds: Double, mode: String, scratch: String, copyOut: Bool = false,
    listen: String = "127.0.0.1", dial: String = "127.0.0.1", dialPort: Int? = nil,
    warmup: Double = 0, wrapReceiver: [String] = [], wrapSender: [String] = []
) throws -> StreamResult {
    var receiveArguments = ["receive", "--pki", pki, "--mode", mode, "--listen", listen]
    if mode == "spool" { receiveArguments += ["--spool", scratch + "/spool-\(UUID().uuidString)"] }
    if copyOut { receiveArguments += ["--copy", "yes"] }
    let receiver = try launch(receiveArguments, wrap: wrapReceiver)
    defer { receiver.stop() }
    guard let listening = receiver.waitForLine("LISTENING ", timeout: 20),
        let port = Int(listening.split(separator: " ")[1])
    else {
        throw BenchFailure("the receiver did not start: \(receiver.finish(timeout: 1))")
    }
    let sendArguments = [
        "send", "--pki", pki, "--host", dial, "--port", String(dialPort ?? port),
        "--payload", String(payload), "--seconds", String(seconds), "--warmup", String(warmup),
        "--frames", mode == "spool" ? "spool" : "template",
    ]
    let sender = try launch(sendArguments, wrap: wrapSender)
    defer { sender.stop() }
    let before = machineCPUSeconds()
    let wallBefore = monotonic()
    let sent = sender.finish(timeout: seconds + 60)
    let after = machineCPUSeconds()
    let busy = after.busy - before.busy
    let wall = monotonic() - wallBefore
    let received = receiver.finish(timeout: 10)
    guard let senderResult = parseResult(sent), let receiverResult = parseResult(received) else {
        throw BenchFailure("a side gave no result (sender: \(sent.suffix(300)); receiver: \(received.suffix(300)))")
    }
    // Approximate: the sides' CPU covers first byte to last ack, the machine's the sender's whole life.
    let ours = (senderResult["cpu"] ?? 0) + (receiverResult["cpu"] ?? 0)
    return StreamResult(
        sender: senderResult, receiver: receiverResult, otherCores: max(0, busy - ours) / max(wall, 1e-6),
        stealCores: (after.steal - before.steal) / max(wall, 1e-6))
}

/// Wrapped commands may need the port the receiver chose *before* the wrapper
/// (the WAN case dials the delay relay's address, the same port).
func launch(_ arguments: [String], wrap: [String]) throws -> Child {
    if wrap.isEmpty { return try Child(executablePath, arguments) }
    return try Child(wrap[0], Array(wrap.dropFirst()) + [executablePath] + arguments)
}

func format(_ value: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", value) }

func makePKI(in scratch: String) throws -> String {
    let directory = scratch + "/pair"
    _ = try PairDirectory.create(pair: "bench", sites: [senderSite, receiverSite], at: directory) { site, _, _ in
        "# link benchmark site \(site): certificates only\n"
    }
    return directory
}

func loadAverage() -> String {
    (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(
        separator: " ") ?? "?"
}

func caseLoopback(pki: String, scratch: String, seconds: Double) {
    say("## 1. TLS link alone, loopback\n")
    say("Sender and receiver are separate processes (CPU per side is that process's getrusage, user + system,")
    say("all threads, from first byte to last ack). BATCH frames with the link's 13-byte prefix, blocking")
    say(
        "TLSConnection write/read, an ACK frame back per read, flow-control window \(LinkSession.Configuration.defaultWindowBytes >> 20) MiB."
    )
    say("\"in place\": the receiver checks each frame's sequence in its read buffer (the transport alone);")
    say(
        "\"copied out\": it also copies each frame into an array of its own, as a real receiver must. \(format(seconds, 0)) s per row."
    )
    say(
        "\"other load\": CPU cores busy with anything but the two sides during the row (/proc/stat; ksoftirqd network work counts here too), of \(ProcessInfo.processInfo.activeProcessorCount);"
    )
    say("\"steal\": cores' worth of time the hypervisor did not run this VM's vCPUs at all.\n")
    say(
        "| batch frame | receiver | MB/s | batches/s | sender CPU s/GB | receiver CPU s/GB | other load (cores) | steal (cores) | vs 800 MB/s target |"
    )
    say("|---|---|---|---|---|---|---|---|---|")
    for (payload, copyOut) in [(256 * 1024, false), (1024 * 1024, false), (256 * 1024, true)] {
        let label = "\(payload / 1024) KiB | \(copyOut ? "copied out" : "in place")"
        do {
            let result = try runStream(
                pki: pki, payload: payload, seconds: seconds, mode: "link", scratch: scratch,
                copyOut: copyOut)
            say(
                "| \(label) | \(format(result.megabytesPerSecond)) | \(format(result.batchesPerSecond, 0)) | \(format(result.senderCPUPerGB, 2)) | \(format(result.receiverCPUPerGB, 2)) | \(format(result.otherCores, 2)) | \(format(result.stealCores, 2)) | \(result.megabytesPerSecond >= 800 ? "met" : "NOT met") |"
            )
        } catch {
            say("| \(label) | failed: \(error) | | | | | | |")
        }
    }
    say("")
}

func caseSpool(pki: String, scratch: String, seconds: Double) {
    say("## 2. TLS link + applier spool (fdatasync group commit) on loopback\n")
    say("The receiver's reader thread hands frames to a spool thread, which appends everything queued with one")
    say("`Spool.append([frames])` (one pwrite + one fdatasync) and then acks; the sender's clock stops at the")
    say("ack of the last batch, so every counted byte is durable. Sender encodes a real frame per sequence")
    say("(the spool checks header, stream, sequence and CRC32C), so its CPU includes encoding. The spool is")
    say("under \(scratch) (`--scratch DIR` picks the disk); default SpoolOptions (64 MiB segments).\n")
    say(
        "| batch frame | MB/s | batches/s | fsyncs/s | batches per fsync | sender CPU s/GB | receiver CPU s/GB | other load (cores) | steal (cores) |"
    )
    say("|---|---|---|---|---|---|---|---|---|")
    for payload in [256 * 1024, 1024 * 1024] {
        do {
            let result = try runStream(pki: pki, payload: payload, seconds: seconds, mode: "spool", scratch: scratch)
            let syncs = result.receiver["syncs"] ?? 0
            say(
                "| \(payload / 1024) KiB | \(format(result.megabytesPerSecond)) | \(format(result.batchesPerSecond, 0)) | \(format(syncs / result.sender["seconds"]!, 0)) | \(format(result.receiver["batches"]! / max(syncs, 1), 2)) | \(format(result.senderCPUPerGB, 2)) | \(format(result.receiverCPUPerGB, 2)) | \(format(result.otherCores, 2)) | \(format(result.stealCores, 2)) |"
            )
        } catch {
            say("| \(payload / 1024) KiB | failed: \(error) | | | | | | | |")
        }
    }
    say("")
}

// MARK: Case 3: two real agents

func freePort() -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            _ = bind(descriptor, pointer, length)
            return getsockname(descriptor, pointer, &length)
        }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

struct AgentRun {
    var wall: Double
    var steady: Double
    var cpu: Double
}

/// One end-to-end run in a fresh directory (new pair, spools, sink).
func runAgents(tandem: String, agent: String, directory: String, batches: Int) throws -> AgentRun {
    var environment = ProcessInfo.processInfo.environment
    environment["TANDEM_DB_PASSWORD"] = "synthetic-not-used"
    var children: [Child] = []
    defer {
        for child in children { child.stop() }
        try? FileManager.default.removeItem(atPath: directory)
    }
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let pair = directory + "/pair"
    let initialise = try Child(
        tandem, ["pair", "init", "--name", "acme", "--sites", "idc,cloud", "--out", pair],
        environment: environment)
    _ = initialise.finish(timeout: 60)
    guard initialise.process.terminationStatus == 0 else { throw BenchFailure("tandem pair init failed") }
    let port = freePort()
    func edit(_ path: String, _ replacements: [(String, String)]) throws {
        var text = try String(contentsOfFile: path, encoding: .utf8)
        for (old, new) in replacements {
            guard text.contains(old) else { throw BenchFailure("\(path) has no line \(old)") }
            text = text.replacingOccurrences(of: old, with: new)
        }
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }
    try edit(
        pair + "/idc/idc.toml",
        [
            ("peer = \"cloud.change-me.invalid:7400\"", "peer = \"127.0.0.1:\(port)\""),
            ("directory = \"/var/lib/tandem/spool\"", "directory = \"\(directory)/idc-spool\""),
        ])
    try edit(
        pair + "/cloud/cloud.toml",
        [
            ("listen = \"0.0.0.0:7400\"", "listen = \"127.0.0.1:\(port)\""),
            ("directory = \"/var/lib/tandem/spool\"", "directory = \"\(directory)/cloud-spool\""),
        ])
    let sink = directory + "/sink.txt"
    func sinkLines() -> Int {
        guard let data = FileManager.default.contents(atPath: sink) else { return 0 }
        return data.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
    }
    let started = monotonic()
    let cpuChildrenBefore = childrenCPU()
    children.append(
        try Child(
            agent,
            [
                "--config", pair + "/cloud/cloud.toml", "--role", "applier",
                "--synthetic-sink", sink,
            ], environment: environment, directory: directory,
            errorLog: directory + "/applier.log"))
    children.append(
        try Child(
            agent,
            [
                "--config", pair + "/idc/idc.toml", "--role", "shipper",
                "--synthetic-batches", String(batches),
            ], environment: environment,
            directory: directory, errorLog: directory + "/shipper.log"))
    var firstLine: Double?
    var lines = 0
    while monotonic() - started < 120 {
        lines = sinkLines()
        if lines > 0 && firstLine == nil { firstLine = monotonic() }
        if lines >= batches { break }
        if children.contains(where: { !$0.process.isRunning }) { break }
        usleep(5_000)
    }
    let finished = monotonic()
    let ended = zip(["applier", "shipper"], children).filter { !$0.1.process.isRunning }.map(\.0)
    for child in children { child.process.terminate() }
    for child in children { _ = child.finish(timeout: 10) }
    let cpu = childrenCPU() - cpuChildrenBefore
    guard lines >= batches else {
        // The line that says why: the agent's own last error, if it wrote one.
        var why = ""
        for side in ["applier", "shipper"] {
            let text = (try? String(contentsOfFile: directory + "/\(side).log", encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").last(where: { $0.hasPrefix("tandem: error") }) {
                why += " \(side): `\(line)`"
            }
        }
        throw BenchFailure(
            "\(lines) of \(batches) batches in the sink after \(format(finished - started, 1)) s; exited on its own: \(ended.isEmpty ? "none" : ended.joined(separator: ", ")).\(why)"
        )
    }
    return AgentRun(wall: finished - started, steady: finished - (firstLine ?? started), cpu: cpu)
}

func caseAgents(scratch: String, batches: Int, attempts: Int) {
    say("## 3. End to end: two agent processes on loopback (synthetic source and sink)\n")
    let tandem = binDirectory + "/tandem"
    let agent = binDirectory + "/tandem-test-agent"
    for binary in [tandem, agent] where !FileManager.default.isExecutableFile(atPath: binary) {
        say("skipped: no \(binary) next to this one; build it with the same configuration\n")
        return
    }
    say("Fixed count of \(batches) synthetic batches (one transaction, one small row each; `tandem-test-agent")
    say(
        "--synthetic-batches`, `--synthetic-sink`), shipper dials, applier listens, certificates from `tandem pair init`. The clock starts"
    )
    say("before either process starts and stops when the sink file (fdatasync per apply group) holds every line.")
    say("Up to \(attempts) attempts, each in a fresh directory; every attempt is listed.\n")
    say(
        "| attempt | batches | wall s (incl. start-up) | batches/s (incl. start-up) | batches/s (first→last applied) | both agents' CPU s |"
    )
    say("|---|---|---|---|---|---|")
    for attempt in 1...attempts {
        do {
            let run = try runAgents(
                tandem: tandem, agent: agent, directory: scratch + "/agents-\(attempt)", batches: batches)
            say(
                "| \(attempt) | \(batches) | \(format(run.wall, 2)) | \(format(Double(batches) / run.wall, 0)) | \(format(Double(batches - 1) / max(run.steady, 1e-6), 0)) | \(format(run.cpu, 2)) |"
            )
            break
        } catch {
            say("| \(attempt) | failed: \(error) | | | | |")
        }
    }
    say("")
}

func childrenCPU() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_CHILDREN.rawValue), &usage)
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
}

// MARK: Case 4: emulated WAN

let ipTool = "/usr/sbin/ip"
let tcTool = "/usr/sbin/tc"

@discardableResult
func command(_ tool: String, _ arguments: [String]) throws -> String {
    let child = try Child(tool, arguments)
    let output = child.finish(timeout: 30)
    guard child.process.terminationStatus == 0 else {
        throw BenchFailure(
            "\(tool) \(arguments.joined(separator: " ")) exited \(child.process.terminationStatus) \(output)")
    }
    return output
}

func caseWAN(pki: String, scratch: String, seconds: Double, warmup: Double, congestionControl: String?) {
    say("## 4. Emulated WAN: 100 Mbit/s each way (tbf), 40 ms each way (userspace packet delay line)\n")
    if geteuid() != 0 { say("skipped: not running as root (network namespaces need it)\n"); return }
    for tool in [ipTool, tcTool] where !FileManager.default.isExecutableFile(atPath: tool) {
        say("skipped: \(tool) not found\n")
        return
    }
    if !FileManager.default.fileExists(atPath: "/dev/net/tun") { say("skipped: no /dev/net/tun\n"); return }
    let id = String(UInt32.random(in: 0..<0xFFFF_FF), radix: 36)
    let a = "tlb\(id)a", r = "tlb\(id)r", b = "tlb\(id)b"
    var delayLine: Child?
    defer {
        delayLine?.stop()
        deleteNamespaces()
    }
    do {
        for namespace in [a, r, b] {
            try command(ipTool, ["netns", "add", namespace])
            liveNamespaces.withLock { $0.append(namespace) }
        }
        // a —veth— r —veth— b; r routes everything arriving from a or b through the TUN delay line.
        try command(
            ipTool, ["link", "add", "va\(id)", "netns", a, "type", "veth", "peer", "name", "ra\(id)", "netns", r])
        try command(
            ipTool, ["link", "add", "vb\(id)", "netns", b, "type", "veth", "peer", "name", "rb\(id)", "netns", r])
        let setup: [(String, [String])] = [
            (a, ["addr", "add", "10.231.1.1/24", "dev", "va\(id)"]), (a, ["link", "set", "va\(id)", "up"]),
            (a, ["link", "set", "lo", "up"]), (a, ["route", "add", "10.231.2.0/24", "via", "10.231.1.254"]),
            (b, ["addr", "add", "10.231.2.1/24", "dev", "vb\(id)"]), (b, ["link", "set", "vb\(id)", "up"]),
            (b, ["link", "set", "lo", "up"]), (b, ["route", "add", "10.231.1.0/24", "via", "10.231.2.254"]),
            (r, ["addr", "add", "10.231.1.254/24", "dev", "ra\(id)"]), (r, ["link", "set", "ra\(id)", "up"]),
            (r, ["addr", "add", "10.231.2.254/24", "dev", "rb\(id)"]), (r, ["link", "set", "rb\(id)", "up"]),
            (r, ["link", "set", "lo", "up"]),
        ]
        for (namespace, arguments) in setup { try command(ipTool, ["-n", namespace] + arguments) }
        for key in ["net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"] {
            try command(ipTool, ["netns", "exec", r, "/usr/sbin/sysctl", "-q", "-w", key])
        }
        if let congestionControl {
            for namespace in [a, b] {
                try command(
                    ipTool,
                    [
                        "netns", "exec", namespace, "/usr/sbin/sysctl", "-q", "-w",
                        "net.ipv4.tcp_congestion_control=\(congestionControl)",
                    ])
            }
        }
        let tun = "td\(id)"
        delayLine = try Child(
            ipTool, ["netns", "exec", r, executablePath, "delayline", "--tun", tun, "--delay-ms", "40"])
        guard delayLine?.waitForLine("READY", timeout: 10) != nil else {
            throw BenchFailure("the delay line did not start: \(delayLine?.finish(timeout: 1) ?? "")")
        }
        try command(ipTool, ["netns", "exec", r, "/usr/sbin/sysctl", "-q", "-w", "net.ipv4.conf.\(tun).rp_filter=0"])
        try command(ipTool, ["-n", r, "link", "set", tun, "up", "txqueuelen", "10000"])
        try command(ipTool, ["-n", r, "route", "add", "default", "dev", tun, "table", "100"])
        try command(ipTool, ["-n", r, "rule", "add", "iif", "ra\(id)", "lookup", "100"])
        try command(ipTool, ["-n", r, "rule", "add", "iif", "rb\(id)", "lookup", "100"])
        // 100 Mbit/s on each side's egress; queue of about one bandwidth-delay product.
        for (namespace, device) in [(a, "va\(id)"), (b, "vb\(id)")] {
            try command(
                ipTool,
                [
                    "netns", "exec", namespace, tcTool, "qdisc", "add", "dev", device, "root", "tbf",
                    "rate", "100mbit", "burst", "64kb", "limit", "1000kb",
                ])
        }
        // Midway through the run, the sending kernel's own view of the connection (RTT, cwnd, retransmits).
        let socketView = Mutex<String>("not captured")
        let probe = Thread {
            usleep(UInt32(seconds * 0.7 * 1e6))
            let text = (try? command(ipTool, ["netns", "exec", a, "/usr/bin/ss", "-tin", "dst", "10.231.2.1"])) ?? ""
            let line = text.split(separator: "\n").first(where: { $0.contains("rtt:") })
            socketView.withLock { $0 = line.map { $0.trimmingCharacters(in: .whitespaces) } ?? "ss gave nothing" }
        }
        probe.start()
        let result = try runStream(
            pki: pki, payload: 256 * 1024, seconds: seconds, mode: "link", scratch: scratch,
            listen: "10.231.2.1", dial: "10.231.2.1", warmup: warmup,
            wrapReceiver: [ipTool, "netns", "exec", b], wrapSender: [ipTool, "netns", "exec", a])
        usleep(400_000)  // one more STATS line after the stream
        let stats = delayLine?.lastLine("STATS ").map { String($0.dropFirst(6)) } ?? "no statistics"
        let drops =
            ((try? command(ipTool, ["netns", "exec", r, "/bin/cat", "/sys/class/net/\(tun)/statistics/tx_dropped"]))
            ?? "?")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let rate = 100e6 / 8
        let whole = result.sender["bytes"]! / result.sender["seconds"]!
        say("Namespaces \(a) —veth— \(r) —veth— \(b); `tc qdisc … tbf rate 100mbit burst 64kb limit 1000kb` on the")
        say("a and b veth egress; the router namespace sends every forwarded packet through a TUN device to a")
        say("delay line (this binary, `delayline`) that re-injects it 40 ms later, in order — so TCP itself sees")
        say("the 80 ms round trip (netem is missing from this kernel).")
        usleep(200_000)
        say("Sender's socket at 70 % of the run (`ss -tin`): `\(socketView.withLock { $0 })`")
        say(
            "Delay line (SCHED_FIFO when realtime=1; late = released more than 1 ms after its 40 ms): \(stats); packets dropped at the TUN queue: \(drops); hypervisor steal during the run: \(format(result.stealCores, 2)) cores."
        )
        let counts = Dictionary(
            uniqueKeysWithValues: stats.split(separator: " ").compactMap { pair -> (String, Double)? in
                let parts = pair.split(separator: "=")
                guard parts.count == 2, let value = Double(parts[1]) else { return nil }
                return (String(parts[0]), value)
            })
        if let total = counts["packets"], let late = counts["late1ms"], total > 0 {
            let share = late / total
            say(
                "Emulator fidelity: \(format(100 * share))% of packets left more than 1 ms after their 40 ms (worst \(format((counts["worstLateUs"] ?? 0) / 1000)) ms late)."
            )
            if share > 0.10 {
                say(
                    "**The emulated link was not faithful in this run** (the delay line did not get the CPU on time: busy or"
                )
                say(
                    "descheduled VM). Extra delay only hurts, so the figures below are a lower bound; rerun on a quieter host."
                )
            }
        }
        say(
            "TLS link stream of 256 KiB batch frames, acked per read, window \(LinkSession.Configuration.defaultWindowBytes >> 20) MiB, \(format(seconds, 0)) s;"
        )
        say("utilisation = batch-frame payload rate ÷ 12.5 MB/s (TCP/IP/TLS framing overhead counts against it:")
        say("the ceiling at MTU 1500 is about 95–96 %).\n")
        say("| span | payload MB/s | utilisation of 100 Mbit/s | target ≥ 90 % |")
        say("|---|---|---|---|")
        say(
            "| whole run incl. slow start (\(format(result.sender["seconds"]!, 1)) s) | \(format(whole / 1e6, 2)) | \(format(100 * whole / rate)) % | \(whole / rate >= 0.9 ? "met" : "NOT met") |"
        )
        if let steadyBytes = result.sender["steadyBytes"], let steadySeconds = result.sender["steadySeconds"] {
            let steady = steadyBytes / steadySeconds
            say(
                "| after \(format(warmup, 0)) s warm-up (\(format(steadySeconds, 1)) s) | \(format(steady / 1e6, 2)) | \(format(100 * steady / rate)) % | \(steady / rate >= 0.9 ? "met" : "NOT met") |"
            )
        }
    } catch {
        say("failed: \(error)")
    }
    say("")
}

/// Kept alive for the whole run: SIGINT/SIGTERM delete the WAN namespaces, then exit.
nonisolated(unsafe) var stopSignals: [any DispatchSourceSignal] = []
let scratchDirectory = Mutex<String?>(nil)

func runAll(_ options: Options) throws {
    stopSignals = [SIGINT, SIGTERM].map { number in
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler {
            deleteNamespaces()
            if let scratch = scratchDirectory.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: scratch) }
            say("interrupted")
            exit(130)
        }
        source.resume()
        return source
    }
    let seconds = options.double("seconds", default: 4)
    // A directory of our own (removed at the end) under --scratch (where the spool case writes: pick the
    // disk to measure) or the temporary directory.
    let scratch = URL(fileURLWithPath: options.values["scratch"] ?? FileManager.default.temporaryDirectory.path)
        .appendingPathComponent("tandem-linkbench-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    scratchDirectory.withLock { $0 = scratch }
    defer { try? FileManager.default.removeItem(atPath: scratch) }
    let pki = try makePKI(in: scratch)
    var name = utsname()
    uname(&name)
    let release = withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
    say("# tandem-linkbench\n")
    say(
        "\(ProcessInfo.processInfo.activeProcessorCount) CPUs, Linux \(release), load average at start \(loadAverage()); \(Date())\n"
    )
    let only = options.values["only"].map { Set($0.split(separator: ",").map(String.init)) }
    if only?.contains("loopback") ?? true { caseLoopback(pki: pki, scratch: scratch, seconds: seconds) }
    if only?.contains("spool") ?? true { caseSpool(pki: pki, scratch: scratch, seconds: seconds) }
    if only?.contains("agents") ?? true {
        caseAgents(
            scratch: scratch, batches: options.int("agent-batches", default: 100_000),
            attempts: options.int("agent-attempts", default: 3))
    }
    if only?.contains("wan") ?? true {
        caseWAN(
            pki: pki, scratch: scratch, seconds: options.double("wan-seconds", default: 10), warmup: 3,
            congestionControl: options.values["wan-cc"])
    }
    say("load average at end \(loadAverage())")
}

// MARK: - Entry

let arguments = CommandLine.arguments.dropFirst()
do {
    switch arguments.first {
    case "receive":
        dieWithParent()
        try runReceiver(Options(arguments.dropFirst()))
    case "send":
        dieWithParent()
        try runSender(Options(arguments.dropFirst()))
    case "delayline":
        dieWithParent()
        try runDelayLine(Options(arguments.dropFirst()))
    case "all": try runAll(Options(arguments.dropFirst()))
    case nil: try runAll(Options([]))
    case let other? where other.hasPrefix("--"): try runAll(Options(arguments))
    case let other?: fail("unknown command \(other) (receive, send, delayline, all)")
    }
} catch {
    fail("\(error)")
}
