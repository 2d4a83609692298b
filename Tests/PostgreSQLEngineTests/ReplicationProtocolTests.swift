import PostgreSQLEngine
import TandemCore
import Testing

@Suite("replication sub-protocol and slot feedback")
struct ReplicationProtocolTests {
    static func be64(_ value: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: value >> UInt64(56 - 8 * $0)) }
    }

    @Test func parsesXLogDataAndKeepalive() throws {
        let data: [UInt8] =
            [UInt8(ascii: "w")] + Self.be64(0x1_0000_0010) + Self.be64(0x1_0000_0020) + Self.be64(42) + [1, 2, 3]
        #expect(
            try ReplicationMessage.parse(data)
                == .xlogData(walStart: LSN(0x1_0000_0010), walEnd: LSN(0x1_0000_0020), sendTime: 42, data: [1, 2, 3]))
        let keepalive: [UInt8] = [UInt8(ascii: "k")] + Self.be64(77) + Self.be64(5) + [1]
        #expect(
            try ReplicationMessage.parse(keepalive) == .keepalive(walEnd: LSN(77), sendTime: 5, replyRequested: true))
    }

    @Test func refusesTruncatedEmptyAndUnknown() {
        #expect(throws: ReplicationProtocolError.empty) { try ReplicationMessage.parse([]) }
        #expect(throws: ReplicationProtocolError.truncated(kind: UInt8(ascii: "w"), length: 24)) {
            try ReplicationMessage.parse([UInt8(ascii: "w")] + Array(repeating: 0, count: 23))
        }
        #expect(throws: ReplicationProtocolError.truncated(kind: UInt8(ascii: "k"), length: 17)) {
            try ReplicationMessage.parse([UInt8(ascii: "k")] + Array(repeating: 0, count: 16))
        }
        #expect(throws: ReplicationProtocolError.unknownKind(0x7A)) { try ReplicationMessage.parse([0x7A, 0]) }
    }

    @Test func standbyStatusLayout() {
        let bytes = ReplicationMessage.standbyStatus(
            write: LSN(3), flush: LSN(2), apply: LSN(1), clock: -1, replyRequested: true)
        #expect(bytes.count == 34)
        #expect(bytes[0] == UInt8(ascii: "r"))
        #expect(Array(bytes[1..<9]) == Self.be64(3))
        #expect(Array(bytes[9..<17]) == Self.be64(2))
        #expect(Array(bytes[17..<25]) == Self.be64(1))
        #expect(Array(bytes[25..<33]) == Array(repeating: 0xFF, count: 8))
        #expect(bytes[33] == 1)
    }

    static func flush(of status: [UInt8]) -> UInt64 { status[9..<17].reduce(0) { $0 << 8 | UInt64($1) } }

    @Test("flush reports only what was confirmed, never what was merely received")
    func flushIsOnlyConfirmed() throws {
        var feedback = SlotFeedback(start: LSN(100), changeDelayNanoseconds: 10, idleIntervalNanoseconds: 1000)
        feedback.receivedThrough(LSN(900))
        let firstStatus = feedback.statusDue(now: 0, clock: 0, replyRequested: false)
        let first = try #require(firstStatus)
        #expect(Self.flush(of: first) == 100)
        #expect(first[1..<9].reduce(0) { $0 << 8 | UInt64($1) } == 900)
        feedback.confirm(LSN(500))
        feedback.confirm(LSN(300))  // never moves back
        #expect(feedback.confirmed == LSN(500))
        let early = feedback.statusDue(now: 5, clock: 0, replyRequested: false)
        #expect(early == nil)  // a change waits changeDelay
        let secondStatus = feedback.statusDue(now: 10, clock: 0, replyRequested: false)
        let second = try #require(secondStatus)
        #expect(Self.flush(of: second) == 500)
        let unchanged = feedback.statusDue(now: 500, clock: 0, replyRequested: false)
        #expect(unchanged == nil)  // unchanged: waits for the idle interval
        let asked = feedback.statusDue(now: 501, clock: 0, replyRequested: true)
        #expect(asked != nil)  // the server asked
        let idle = feedback.statusDue(now: 1501, clock: 0, replyRequested: false)
        #expect(idle != nil)
    }

    @Test func idleKeepaliveConfirmsWalEnd() {
        var feedback = SlotFeedback(start: LSN(10))
        feedback.confirmIdle(walEnd: LSN(40))
        #expect(feedback.confirmed == LSN(40) && feedback.received == LSN(40))
        feedback.confirmIdle(walEnd: LSN(20))
        #expect(feedback.confirmed == LSN(40))
    }
}
