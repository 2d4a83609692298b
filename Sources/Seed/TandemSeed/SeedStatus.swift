import Foundation
import TandemCore

/// What `tandem seed` asks for. Only a new seed uses the tables and `truncateTarget`; a seed
/// under way continues as it was started.
public struct SeedRequest: Codable, Hashable, Sendable {
    /// `schema.table` names; nil for every table the capture replicates.
    public var tables: [String]?
    /// Empty DR tables that hold rows instead of refusing them.
    public var truncateTarget: Bool
    public var chunkRows: Int
    /// Chunks read at once (one primary connection each).
    public var readers: Int

    public init(tables: [String]? = nil, truncateTarget: Bool = false, chunkRows: Int = 5_000, readers: Int = 2) {
        self.tables = tables
        self.truncateTarget = truncateTarget
        self.chunkRows = chunkRows
        self.readers = readers
    }
}

/// A seed as a person or a machine follows it (`tandem seed`, `--json`): per table and overall
/// rows and bytes durable at the DR site, rate and ETA.
public struct SeedStatus: Codable, Hashable, Sendable {
    public enum State: String, Codable, Sendable {
        /// No seed has run on this pair (or its progress file was removed).
        case none
        /// Checking the DR site and creating the schema.
        case preparing
        case copying
        /// Every chunk is durable at the DR site; waiting for the rows to be applied, then the
        /// schema's second part (indexes, constraints).
        case finishing
        case done
        /// Stopped with `error`; running `tandem seed` again continues after the last durable chunk.
        case failed
    }

    public struct Table: Codable, Hashable, Sendable {
        public var name: String
        public var state: SeedProgress.TableState
        public var rows: Int64
        public var bytes: Int64
        public var estimatedRows: Int64

        public init(name: String, state: SeedProgress.TableState, rows: Int64, bytes: Int64, estimatedRows: Int64) {
            self.name = name
            self.state = state
            self.rows = rows
            self.bytes = bytes
            self.estimatedRows = estimatedRows
        }
    }

    public var state: State
    public var tables: [Table] = []
    public var rows: Int64 = 0
    public var bytes: Int64 = 0
    public var estimatedRows: Int64 = 0
    /// Rows read and sent but not yet durable (what a crash now would read again).
    public var rowsInFlight: Int64 = 0
    /// Since this run started (a resumed run counts from its own start).
    public var elapsedSeconds: Double = 0
    public var rowsPerSecond: Double?
    public var bytesPerSecond: Double?
    /// Seconds left at the current rate, from the row estimates.
    public var etaSeconds: Double?
    /// What a resumed run continued from, one line per table.
    public var resumed: [String] = []
    /// Bytes of source log (WAL, binlog) the primary keeps for the pair: its log after what is
    /// durable at the DR site (the RPO exposure in log bytes). A long seed makes it grow only
    /// while the DR site falls behind, since the copied rows travel in the stream.
    public var sourceLogRetainedBytes: UInt64?
    public var error: SeedError?

    public init(state: State) {
        self.state = state
    }

    /// The figures of `progress` as the run `elapsed` seconds old sees them; `rowsAtStart` and
    /// `bytesAtStart` are what was durable when this run started (the rate counts this run only).
    public init(
        _ state: State, progress: SeedProgress, elapsed: Double, rowsAtStart: Int64, bytesAtStart: Int64,
        rowsInFlight: Int
    ) {
        self.state = state
        tables = progress.tables.map {
            Table(
                name: $0.table.description, state: $0.state, rows: $0.rows, bytes: $0.bytes,
                estimatedRows: max($0.table.estimatedRows, $0.rows))
        }
        rows = progress.rows
        bytes = progress.bytes
        estimatedRows = progress.estimatedRows
        self.rowsInFlight = Int64(rowsInFlight)
        elapsedSeconds = elapsed
        if elapsed >= 1 {
            let rate = Double(rows - rowsAtStart) / elapsed
            rowsPerSecond = rate
            bytesPerSecond = Double(bytes - bytesAtStart) / elapsed
            // No ETA while a table still copying has passed its estimate (or had none: a table
            // never analyzed): what is left of it is unknown, and 0 would be a promise.
            let unknown = progress.tables.contains { $0.state == .copying && $0.rows >= $0.table.estimatedRows }
            if rate > 0, state == .copying, !unknown {
                etaSeconds = Double(max(estimatedRows - rows, 0)) / rate
            }
        }
    }

    /// The process exit code `tandem seed` ends with: 0 done, 1 failed, 2 anything else.
    public var exitCode: Int32 {
        switch state {
        case .done: 0
        case .failed: 1
        default: 2
        }
    }
}

/// The JSON form of `SeedStatus` (`tandem seed --json`, the control socket): snake_case keys.
public enum SeedStatusJSON {
    public static func encode(_ status: SeedStatus) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        return (try? Array(encoder.encode(status))) ?? Array(#"{"state":"failed"}"#.utf8)
    }

    public static func decode(_ bytes: [UInt8]) throws -> SeedStatus {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(SeedStatus.self, from: Data(bytes))
    }
}
