import TandemCore

/// Round-trip time and clock offset of the current connection, from heartbeat echoes.
///
/// The offset matters because lag is "now − source commit time": the DR site's
/// clock compared with commit times stamped at the primary. Each echo gives an
/// NTP-style sample; the sample with the smallest round trip among the recent
/// ones is taken for the offset, since queueing delay is what makes a sample's
/// offset wrong and the fastest round trip had the least of it.
public struct LinkEstimates: Hashable, Sendable {
    /// Smoothed round-trip time (exponential average, weight 1/8 per sample, as TCP does).
    public private(set) var roundTripTime: Duration?
    public private(set) var latestRoundTripTime: Duration?
    /// Peer wall clock minus local wall clock. Before the first heartbeat echo it
    /// is the rough figure from the peer's HELLO, off by up to one one-way delay.
    public private(set) var clockOffset: Duration?
    /// Heartbeat echoes taken into account (0 while `clockOffset` is the HELLO guess).
    public private(set) var sampleCount = 0

    private var recent: [Sample] = []
    private static let window = 8

    private struct Sample: Hashable, Sendable {
        var roundTrip: Duration
        var offset: Duration
    }

    public init() {}

    /// The HELLO's wall clock against ours at arrival: the peer's clock read one
    /// one-way delay earlier, so the figure is biased by that delay.
    mutating func recordHello(peerWall: Timestamp, localWall: Timestamp) {
        guard sampleCount == 0,
            let difference = checkedDifference(peerWall.microsecondsSinceEpoch, localWall.microsecondsSinceEpoch)
        else { return }
        clockOffset = .microseconds(difference)
    }

    /// One heartbeat echo.
    /// - Parameters:
    ///   - elapsed: local time from sending the echoed heartbeat to receiving the echo.
    ///   - held: how long the peer says it held our heartbeat before echoing it.
    ///   - peerWall: the peer's wall clock when it sent the echo.
    ///   - localWall: our wall clock when the echo arrived.
    /// Returns false (and changes nothing) for an impossible sample, which only a
    /// broken or hostile peer produces.
    @discardableResult
    mutating func recordEcho(elapsed: Duration, held: Duration, peerWall: Timestamp, localWall: Timestamp) -> Bool {
        guard held >= .zero, held <= elapsed else { return false }
        let roundTrip = elapsed - held
        // NTP: t0 our send, t1 peer receive, t2 peer send, t3 our receive;
        // offset = ((t1 − t0) + (t2 − t3)) / 2. With t1 = t2 − held and
        // t0 = t3 − elapsed this is (t2 − t3) + (elapsed − held) / 2.
        guard let peerMinusLocal = checkedDifference(peerWall.microsecondsSinceEpoch, localWall.microsecondsSinceEpoch)
        else { return false }
        let offset = Duration.microseconds(peerMinusLocal) + roundTrip / 2

        latestRoundTripTime = roundTrip
        if let smoothed = roundTripTime {
            roundTripTime = smoothed * 7 / 8 + roundTrip / 8
        } else {
            roundTripTime = roundTrip
        }
        recent.append(Sample(roundTrip: roundTrip, offset: offset))
        if recent.count > Self.window { recent.removeFirst() }
        clockOffset = recent.min { $0.roundTrip < $1.roundTrip }?.offset
        sampleCount += 1
        return true
    }
}

/// a − b, or nil when it does not fit (wall clocks come from the peer and may be absurd).
func checkedDifference(_ a: Int64, _ b: Int64) -> Int64? {
    let (difference, overflow) = a.subtractingReportingOverflow(b)
    // Keep well inside Duration's range so later arithmetic cannot trap either.
    guard !overflow, difference.magnitude < UInt64(Int64.max / 4) else { return nil }
    return difference
}
