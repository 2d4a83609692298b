import Foundation

/// One site's figures as its agent reports them: to `tandem status` through the control socket,
/// to the peer site over the link (so either site shows both), and to the metrics endpoint.
///
/// The JSON form (`StatusJSON`) is a stable interface for monitoring scripts: keys are the
/// property names in snake_case, times are Unix seconds (`…_at`), durations are seconds
/// (`…_seconds`), and a figure that is not known is absent rather than 0. New keys may be added;
/// existing ones keep their meaning. `schema` counts incompatible changes.
public struct SiteStatus: Codable, Sendable, Equatable {
    public var schema = 1
    public var site: String
    public var pair: String
    /// "shipper" or "applier".
    public var role: String
    public var engine: String?
    /// When this report was made, on the reporting site's clock.
    public var reportedAt: Double
    public var agentStartedAt: Double
    public var link: LinkFigures
    public var positions: Positions
    /// The shipper's view of the source's log (absent at the applier).
    public var sourceLog: SourceLogFigures?
    public var lag: LagFigures
    public var rates: Rates
    public var totals: Totals
    /// The applier's spool (absent at the shipper).
    public var spool: SpoolFigures?
    /// The database this agent works on: reachable and working, or failing since when.
    public var database: DatabaseFigures
    /// The shipper's latest capture watermark: the applier resolves its own stages against it.
    public var captureMark: Watermark?
    /// The last error this agent logged, with its time.
    public var lastError: ErrorNote?

    public init(
        site: String, pair: String, role: String, engine: String?, reportedAt: Double, agentStartedAt: Double,
        link: LinkFigures = LinkFigures(), positions: Positions = Positions(), lag: LagFigures = LagFigures(),
        rates: Rates = Rates(), totals: Totals = Totals(), spool: SpoolFigures? = nil,
        database: DatabaseFigures = DatabaseFigures(), captureMark: Watermark? = nil, lastError: ErrorNote? = nil
    ) {
        self.site = site
        self.pair = pair
        self.role = role
        self.engine = engine
        self.reportedAt = reportedAt
        self.agentStartedAt = agentStartedAt
        self.link = link
        self.positions = positions
        self.lag = lag
        self.rates = rates
        self.totals = totals
        self.spool = spool
        self.database = database
        self.captureMark = captureMark
        self.lastError = lastError
    }

    public struct LinkFigures: Codable, Sendable, Equatable {
        /// "up", "connecting" or "down".
        public var state: String = "down"
        /// Since when the link is in `state`.
        public var since: Double?
        public var peerSite: String?
        public var roundTripSeconds: Double?
        /// The peer's clock minus this site's, from the link's heartbeats.
        public var clockOffsetSeconds: Double?
        /// Why the last connection ended.
        public var lastCloseReason: String?
        public init() {}
    }

    /// Where each stage is, as a batch number and the source position of its last commit.
    public struct Positions: Codable, Sendable, Equatable {
        public var captured: StagePoint?
        public var sent: StagePoint?
        public var durable: StagePoint?
        public var applied: StagePoint?
        public init() {}
    }

    /// Where the source's log stands, in the engine's own terms (an LSN; `file:position`).
    public struct SourceLogFigures: Codable, Sendable, Equatable {
        /// How far the capture has read.
        public var read: String?
        /// The source's log end (PostgreSQL: the WAL flush position; MariaDB: the end of the
        /// newest binlog file).
        public var end: String?
        /// How far the log is durable at the DR site.
        public var durable: String?
        public init(read: String? = nil, end: String? = nil, durable: String? = nil) {
            self.read = read
            self.end = end
            self.durable = durable
        }
    }

    public struct StagePoint: Codable, Sendable, Equatable {
        public var batch: UInt64
        /// The engine's text form of the position (an LSN, a GTID set), when known.
        public var position: String?
        /// Source time up to which this stage holds everything (its watermark).
        public var sourceTime: Double?
        public init(batch: UInt64, position: String? = nil, sourceTime: Double? = nil) {
            self.batch = batch
            self.position = position
            self.sourceTime = sourceTime
        }
    }

    /// The four lag figures (README, "Lag"). Each is exact or an upper bound, never flattering.
    public struct LagFigures: Codable, Sendable, Equatable {
        /// Age of the oldest source commit not yet durable in the DR spool: what a disaster at
        /// the primary now would lose.
        public var rpoExposureSeconds: Double?
        public var rpoExposureTransactions: UInt64?
        /// Bytes of source log (WAL, binlog) after what is durable at the DR site, up to the
        /// source's log end: everything a disaster could lose, including log that holds no
        /// replicated change (other databases, vacuum) — an upper bound.
        public var rpoExposureLogBytes: UInt64?
        /// Bytes of batches (compressed, as shipped) not yet durable at the DR site.
        public var rpoExposureBatchBytes: UInt64?
        /// Age of the oldest source commit not yet applied at the DR database: what a switchover
        /// would wait for.
        public var applyLagSeconds: Double?
        /// The backlog durable at the DR site but not applied, over the current apply rate.
        public var drainSeconds: Double?
        /// Time since the DR site last heard news from the source (a batch, or a capture
        /// watermark that moved): a stalled pipeline shows here even when nothing is pending.
        public var stalenessSeconds: Double?
        /// Age of the oldest source commit the shipper has not read.
        public var captureLagSeconds: Double?
        /// Bytes of source log between what the shipper has read and the source's log end.
        public var captureLagBytes: UInt64?
        public init() {}
    }

    public struct Rates: Codable, Sendable, Equatable {
        public var capturedTransactionsPerSecond: Double?
        public var appliedTransactionsPerSecond: Double?
        public var appliedRowsPerSecond: Double?
        public var appliedBatchesPerSecond: Double?
        public var linkBytesPerSecond: Double?
        /// Raw (uncompressed) batch bytes over bytes shipped, since the agent started.
        public var compressionRatio: Double?
        public init() {}
    }

    /// Totals since the agent started.
    public struct Totals: Codable, Sendable, Equatable {
        public var capturedBatches: UInt64 = 0
        public var capturedTransactions: UInt64 = 0
        public var capturedRows: UInt64 = 0
        public var capturedRawBytes: UInt64 = 0
        public var sentBatches: UInt64 = 0
        public var sentBytes: UInt64 = 0
        public var storedBatches: UInt64 = 0
        public var storedBytes: UInt64 = 0
        public var appliedBatches: UInt64 = 0
        public var appliedTransactions: UInt64 = 0
        public var appliedRows: UInt64 = 0
        public var databaseFailures: UInt64 = 0
        public init() {}
    }

    public struct SpoolFigures: Codable, Sendable, Equatable {
        public var bytes: UInt64
        /// Batches durable in the spool but not yet applied.
        public var backlogBatches: UInt64
        public init(bytes: UInt64, backlogBatches: UInt64) {
            self.bytes = bytes
            self.backlogBatches = backlogBatches
        }
    }

    public struct DatabaseFigures: Codable, Sendable, Equatable {
        /// "up", "down" (failing, retried) or "unknown" (not used yet).
        public var state: String = "unknown"
        public var since: Double?
        public var failure: String?
        public init() {}
    }

    public struct ErrorNote: Codable, Sendable, Equatable {
        public var message: String
        public var at: Double
        public init(message: String, at: Double) {
            self.message = message
            self.at = at
        }
    }
}

/// A site's report together with the last one its peer sent over the link.
public struct PairStatus: Codable, Sendable, Equatable {
    public var local: SiteStatus
    public var peer: SiteStatus?
    /// When the peer's report arrived, on this site's clock.
    public var peerReceivedAt: Double?

    public init(local: SiteStatus, peer: SiteStatus? = nil, peerReceivedAt: Double? = nil) {
        self.local = local
        self.peer = peer
        self.peerReceivedAt = peerReceivedAt
    }
}

extension PairStatus {
    /// The applier's report: this site's, or the peer's last one.
    public var applier: SiteStatus? { local.role == "applier" ? local : peer }
    /// The shipper's report: this site's, or the peer's last one.
    public var shipper: SiteStatus? { local.role == "shipper" ? local : peer }
    /// RPO exposure as the pair shows it: the larger of the two sites' figures (each is an
    /// upper bound from what that site knows, so the larger is the honest one).
    public var rpoExposureSeconds: Double? {
        [local.lag.rpoExposureSeconds, peer?.lag.rpoExposureSeconds].compactMap { $0 }.max()
    }
}

/// The one JSON form of the reports: on the link, on the control socket, in `status --json`.
public enum StatusJSON {
    public static func encode<T: Encodable>(_ value: T, pretty: Bool = false) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted] : [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return (try? Array(encoder.encode(value))) ?? Array("{}".utf8)
    }

    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try decoder.decode(type, from: Data(bytes))
    }
}
