import ApplyKit
import CaptureKit
import Foundation
import SeededRandom
import TLSSupport
import TandemAgent
import TandemCodec
import TandemCore
import TandemLink
import TandemSynthetic
import TandemTestSupport
import TandemTransport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Protocol-level bad input against a real `tandem agent` applier over loopback TLS.
///
/// The test dials the applier as site "idc" with idc's real certificate (so TLS
/// succeeds) and speaks the link protocol by hand. For every bad input: the applier
/// closes the connection (with an ERROR of the right code where it sends one), logs
/// one line naming the peer and the reason, keeps running, and stores nothing.
@Suite("bad input over loopback", .serialized)
struct BadInputTests {
    // MARK: Before the handshake

    @Test func lengthPrefixOfFourGiBIsRefusedWithoutAllocating() async throws {
        let applier = try await StartedApplier()
        let shipper = try await applier.connect()
        let peakBefore = try #require(applier.virtualMemoryPeakKiB())
        try await shipper.sendRaw([0xFF, 0xFF, 0xFF, 0xFF])
        try await applier.expectRefusal(shipper, code: .frameTooLarge, reason: "4294967295 bytes exceeds")
        // Not even reserved: the applier's address space never grew by anything near 4 GiB.
        let peakAfter = try #require(applier.virtualMemoryPeakKiB())
        #expect(peakAfter - peakBefore < 1024 * 1024, "VmPeak grew from \(peakBefore) kB to \(peakAfter) kB")
    }

    @Test func truncatedFrameIsDropped() async throws {
        let applier = try await StartedApplier()
        let shipper = try await applier.connect()
        // The prefix announces 1 000 bytes; 10 arrive, then the shipper closes cleanly.
        try await shipper.sendRaw(
            [0xE8, 0x03, 0x00, 0x00, LinkMessageKind.hello.rawValue] + [UInt8](repeating: 1, count: 9))
        await shipper.connection.finish()
        try await applier.expectLogLine(marker: "link: connection to idc closed", reason: "lost")
        try await applier.expectUnchanged(durable: 0, sinkLines: 0)
    }

    @Test func unknownFrameTypeIsRefused() async throws {
        let applier = try await StartedApplier()
        let shipper = try await applier.connect()
        try await shipper.sendRaw([1, 0, 0, 0, 99])
        try await applier.expectRefusal(shipper, code: .protocolViolation, reason: "unknown link frame type 99")
    }

    @Test func helloFromAFutureProtocolVersionIsRefused() async throws {
        let applier = try await StartedApplier()
        let shipper = try await applier.connect()
        try await shipper.send(.hello(applier.hello(version: 999)))
        try await applier.expectRefusal(shipper, code: .versionMismatch, reason: "version 999")
    }

    @Test func helloForAnotherPairIsRefused() async throws {
        let applier = try await StartedApplier()
        let shipper = try await applier.connect()
        try await shipper.send(.hello(applier.hello(pair: LinkName("other")!)))
        try await applier.expectRefusal(shipper, code: .pairMismatch, reason: "pair \"other\"")
    }

    @Test func randomGarbageAfterTLSIsRefused() async throws {
        let applier = try await StartedApplier()
        let shipper = try await applier.connect()
        var random = SplitMix64(seed: 0xBAD_1257)
        try await shipper.sendRaw((0..<512).map { _ in UInt8.random(in: 0...255, using: &random) })
        // Whatever the first four bytes announce, the applier refuses them (with this
        // seed: a frame of 961 319 925 bytes, over the limit).
        let error = try await applier.expectRefusal(shipper, code: nil, reason: "")
        #expect(error?.code == .frameTooLarge || error?.code == .protocolViolation, "\(String(describing: error))")
    }

    // MARK: After a valid handshake

    @Test func bitFlippedBatchIsRefusedForItsChecksum() async throws {
        let applier = try await StartedApplier()
        let shipper = try await applier.connect()
        try await applier.handshake(shipper)
        var frame = try applier.batchFrame(sequence: 1)
        let headerLength = Int(frame[8]) | Int(frame[9]) << 8 | Int(frame[10]) << 16 | Int(frame[11]) << 24
        let bodyLength = Int(frame[12]) | Int(frame[13]) << 8 | Int(frame[14]) << 16 | Int(frame[15]) << 24
        try #require(bodyLength > 0)
        frame[BatchFormat.prefixSize + headerLength + bodyLength / 2] ^= 0x10
        try await shipper.send(.batch(sequence: 1, frame: frame))
        let error = try await applier.expectRefusal(shipper, code: .protocolViolation, reason: "checksum")
        #expect(error?.reason.contains("batch 1") == true, "\(String(describing: error))")
    }

    @Test func replayedBatchIsRefusedAfterTheValidOneIsStored() async throws {
        let applier = try await StartedApplier()
        let shipper = try await applier.connect()
        try await applier.handshake(shipper)
        let frame = try applier.batchFrame(sequence: 1)
        try await shipper.send(.batch(sequence: 1, frame: frame))
        // Wait for the ACK that states batch 1 durable.
        var durable: UInt64 = 0
        while durable < 1, let message = await shipper.next() {
            if case .ack(let ack) = message { durable = ack.durable }
        }
        try #require(durable == 1, "batch 1 was not acknowledged\n\(applier.pair.logs())")
        try await shipper.send(.batch(sequence: 1, frame: frame))
        try await applier.expectRefusal(
            shipper, code: .outOfOrderBatch, reason: "expected batch 2, received batch 1",
            durable: 1, sinkLines: 1)
    }

    @Test func batchAfterAGapIsRefused() async throws {
        let applier = try await StartedApplier()
        let shipper = try await applier.connect()
        try await applier.handshake(shipper)
        try await shipper.send(.batch(sequence: 3, frame: try applier.batchFrame(sequence: 3)))
        try await applier.expectRefusal(shipper, code: .outOfOrderBatch, reason: "expected batch 1, received batch 3")
    }
}

/// A `tandem agent` applier (role applier, synthetic sink) of a fresh pair, listening on loopback.
final class StartedApplier {
    let pair: AgentPair
    let shipperSite = LinkName("idc")!
    let pairName = LinkName("acme")!
    private var logLinesBefore = 0
    /// Log lines `expectLogLine` found, to count again once `expectUnchanged` saw a later event.
    private var loggedOnce: [(marker: String, reason: String, since: Int)] = []

    init() async throws {
        pair = try AgentPair(batches: 1)
        try pair.startApplier()
        let pair = self.pair
        let listening = try await eventuallyAsync(15) {
            pair.applierLog().contains("link: listening on") || pair.applier?.isRunning != true
        }
        guard listening, pair.applier?.isRunning == true else {
            throw FixtureError("the applier did not start listening\n\(pair.logs())")
        }
    }

    /// Dials the applier as the shipper site, with its real certificate.
    func connect() async throws -> RawShipper {
        let site = pair.directory + "/pair/idc/"
        let context = try TLSContext(
            role: .client, caFile: site + "ca.pem", certificateFile: site + "idc.pem",
            keyFile: site + "idc.key")
        let connection = try await TLSDialer(context: context, peerSite: "cloud").connect(
            host: "127.0.0.1", port: pair.port)
        logLinesBefore = lines().count
        return RawShipper(connection: connection)
    }

    func hello(version: UInt16 = LinkProtocol.currentVersion, pair name: LinkName? = nil, resumePoint: UInt64 = 0)
        -> LinkHello
    {
        LinkHello(
            version: version, pair: name ?? pairName, site: shipperSite, role: .sender, stream: pair.stream,
            resumePoint: resumePoint,
            wallClock: Timestamp(microsecondsSinceEpoch: Int64(Date().timeIntervalSince1970 * 1e6)))
    }

    /// The applier's HELLO, our valid HELLO, and the applier's first ACK.
    func handshake(_ shipper: RawShipper) async throws {
        guard case .hello(let theirs) = await shipper.next() else {
            throw FixtureError("no HELLO from the applier\n\(pair.logs())")
        }
        #expect(theirs.role == .receiver && theirs.pair == pairName && theirs.resumePoint == 0)
        try await shipper.send(.hello(hello()))
        guard case .ack = await shipper.next() else { throw FixtureError("no ACK after the handshake\n\(pair.logs())") }
    }

    /// A real batch frame of the stream `acme-idc`.
    func batchFrame(sequence: UInt64) throws -> [UInt8] {
        try BatchEncoder().encode(SyntheticBatches.batch(stream: pair.stream, sequence: sequence)).frame
    }

    func lines() -> [Substring] { pair.applierLog().split(separator: "\n") }

    /// The applier process's peak virtual memory (`VmPeak` in /proc/PID/status), in kB.
    func virtualMemoryPeakKiB() -> Int? {
        guard let pid = pair.applier?.pid,
            let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmPeak:") })
        else { return nil }
        return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
    }

    /// The applier closes the connection (after an ERROR of `code`, when given), logs one
    /// line naming the peer and `reason`, keeps running, and its spool and sink are as given.
    @discardableResult
    func expectRefusal(
        _ shipper: RawShipper, code: LinkErrorCode?, reason: String, durable: UInt64 = 0,
        sinkLines: Int = 0
    ) async throws -> LinkErrorMessage? {
        let (messages, closed) = await shipper.readUntilClosed()
        #expect(closed, "the applier did not close the connection\n\(pair.logs())")
        let errors = messages.compactMap { message -> LinkErrorMessage? in
            if case .error(let error) = message { return error }
            return nil
        }
        #expect(errors.count == 1, "ERROR frames received: \(errors)")
        if let code { #expect(errors.first?.code == code, "\(errors)") }
        if !reason.isEmpty { #expect(errors.first?.reason.contains(reason) == true, "\(errors)") }
        try await expectLogLine(marker: "link: closing the connection to idc", reason: reason)
        try await expectUnchanged(durable: durable, sinkLines: sinkLines)
        return errors.first
    }

    /// Exactly one new log line holds `marker` (which names the peer site), and it names the
    /// peer and `reason`. Counted when the line appears, and again by `expectUnchanged` once a
    /// later event (a new connection's batch in the sink) shows the applier moved on: a second
    /// line logged late fails too.
    func expectLogLine(marker: String, reason: String) async throws {
        let since = logLinesBefore
        _ = try await eventuallyAsync(5) { !self.freshLines(since: since, marker).isEmpty }
        checkLogLine(marker: marker, reason: reason, since: since, first: true)
        loggedOnce.append((marker, reason, since))
    }

    private func freshLines(since: Int, _ marker: String) -> [Substring] {
        Array(lines().dropFirst(since)).filter { $0.contains(marker) }
    }

    private func checkLogLine(marker: String, reason: String, since: Int, first: Bool = false) {
        let fresh = freshLines(since: since, marker)
        #expect(fresh.count == 1, "log lines with \"\(marker)\": \(fresh)\n\(pair.logs())")
        let matching = fresh.filter { $0.contains("idc") && (reason.isEmpty || $0.contains(reason)) }
        #expect(matching.count == 1, "log lines with \"\(marker)\": \(fresh)\n\(pair.logs())")
        if first, let line = matching.first { print("refusal logged: \(line)") }
    }

    /// The applier still runs and stored and applied nothing the bad peer sent: a new
    /// connection's HELLO states `durable` as the spool's highest durable batch, and the next
    /// valid batch, `durable + 1`, sent on that connection as a later marker, is the one line
    /// the sink gains. (Batches apply in order: anything wrongly accepted before the marker
    /// would be in the sink ahead of it, or would have the marker refused as out of order.)
    func expectUnchanged(durable: UInt64, sinkLines: Int) async throws {
        #expect(pair.applier?.isRunning == true, "a bad peer stopped the applier\n\(pair.logs())")
        #expect(pair.sinkLineCount() == sinkLines, "sink lines\n\(pair.logs())")
        let probe = try await connect()
        guard case .hello(let hello) = await probe.next() else {
            Issue.record("no HELLO from the applier on a new connection\n\(pair.logs())")
            return
        }
        #expect(hello.resumePoint == durable, "the applier's spool is durable through \(hello.resumePoint)")
        let marker = durable + 1
        try await probe.send(.hello(self.hello(resumePoint: durable)))
        try await probe.send(.batch(sequence: marker, frame: try batchFrame(sequence: marker)))
        let pair = self.pair
        let arrived = try await eventuallyAsync(10) {
            pair.sinkLines().last?.hasPrefix("\(marker) ") == true || pair.applier?.isRunning != true
        }
        #expect(
            arrived && pair.sinkLines().last?.hasPrefix("\(marker) ") == true,
            "the marker batch \(marker) did not reach the sink: \(pair.sinkLines().suffix(3))\n\(pair.logs())")
        #expect(pair.sinkLineCount() == sinkLines + 1, "sink lines after the marker batch\n\(pair.logs())")
        for check in loggedOnce { checkLogLine(marker: check.marker, reason: check.reason, since: check.since) }
        probe.connection.close()
        #expect(pair.applier?.isRunning == true, "\(pair.logs())")
    }
}

/// The shipper's end of one connection, driven by hand.
final class RawShipper {
    let connection: TLSConnection
    private var decoder = LinkFrameDecoder()
    private var buffered: [LinkMessage] = []
    private var ended = false

    init(connection: TLSConnection) { self.connection = connection }

    func sendRaw(_ bytes: [UInt8]) async throws {
        try await connection.send(bytes)
        try await connection.flush()
    }

    func send(_ message: LinkMessage) async throws {
        try await sendRaw(try LinkFrameEncoder().encode(message))
    }

    /// The next message, or nil once the connection ended (closed by the applier, or
    /// closed here after `timeout`).
    func next(timeout: Duration = .seconds(5)) async -> LinkMessage? {
        if !buffered.isEmpty { return buffered.removeFirst() }
        guard !ended else { return nil }
        let watchdog = Task { [connection] in
            try await Task.sleep(for: timeout)
            connection.close()
        }
        defer { watchdog.cancel() }
        while buffered.isEmpty {
            do {
                guard let chunk = try await connection.receive() else {
                    ended = true
                    return nil
                }
                buffered += try decoder.decode(chunk)
            } catch {
                ended = true
                return nil
            }
        }
        return buffered.removeFirst()
    }

    /// Every message until the connection ends; `closed` is false when it was still
    /// open after `timeout` (the applier did not close it).
    func readUntilClosed(timeout: Duration = .seconds(5)) async -> (messages: [LinkMessage], closed: Bool) {
        let deadline = ContinuousClock.now + timeout
        var messages: [LinkMessage] = []
        while true {
            let left = deadline - .now
            if left <= .zero {
                connection.close()
                return (messages, false)
            }
            guard let message = await next(timeout: left) else { break }
            messages.append(message)
        }
        return (messages, ContinuousClock.now < deadline)
    }
}
