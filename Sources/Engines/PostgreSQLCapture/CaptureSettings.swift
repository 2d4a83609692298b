import CaptureKit
import TandemCore

/// What the PostgreSQL capture needs to know, independent of the TOML config.
public struct PostgreSQLCaptureSettings: Sendable {
    /// libpq conninfo of the primary database (without `replication=`).
    public var conninfo: String
    public var stream: StreamID
    /// The logical slot (created if absent on first start) and the publication.
    public var slotName: String
    public var publicationName: String
    /// Which tables the publication holds: nil means `FOR ALL TABLES` (tables created
    /// later join by themselves); otherwise a filter over `schema.table`.
    public var tableFilter: (@Sendable (_ schema: String, _ table: String) -> Bool)?
    /// The capture's own state (system identifier, timeline, slot) lives here, so a
    /// restart can tell the same cluster from a replaced one.
    public var stateDirectory: String
    public var batching: TransactionBatcher.Limits
    public var compressionLevel: Int32
    /// A transactional `pg_logical_emit_message` this often keeps lag measurable and
    /// the slot moving on an idle primary; 0 turns it off.
    public var heartbeatIntervalNanoseconds: UInt64
    /// Finished batches waiting for the shipper; past this, capture stops reading the
    /// replication socket (the server keeps the WAL) so memory stays bounded.
    public var maximumReadyBytes: Int

    public init(
        conninfo: String, stream: StreamID, slotName: String, publicationName: String,
        tableFilter: (@Sendable (String, String) -> Bool)? = nil, stateDirectory: String,
        batching: TransactionBatcher.Limits = .init(), compressionLevel: Int32 = 1,
        heartbeatIntervalNanoseconds: UInt64 = 5_000_000_000, maximumReadyBytes: Int = 32 << 20
    ) {
        self.conninfo = conninfo
        self.stream = stream
        self.slotName = slotName
        self.publicationName = publicationName
        self.tableFilter = tableFilter
        self.stateDirectory = stateDirectory
        self.batching = batching
        self.compressionLevel = compressionLevel
        self.heartbeatIntervalNanoseconds = heartbeatIntervalNanoseconds
        self.maximumReadyBytes = maximumReadyBytes
    }

    /// PostgreSQL object names derived from the pair and site: lower-case letters,
    /// digits and `_`, at most 63 bytes (NAMEDATALEN - 1).
    public static func objectName(_ parts: String...) -> String {
        let joined = parts.joined(separator: "_").lowercased()
        let cleaned = String(
            joined.unicodeScalars.map { scalar -> Character in
                (("a"..."z").contains(scalar) || ("0"..."9").contains(scalar)) ? Character(scalar) : "_"
            })
        return String(cleaned.prefix(63))
    }
}

/// The prefix of replication origins that Tandem's applier uses; transactions the
/// capture sees with such an origin were written by Tandem and are not shipped back.
public let tandemOriginPrefix = "tandem_"
