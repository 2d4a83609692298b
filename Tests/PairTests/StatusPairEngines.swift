import Foundation
import MySQLClient
import PGClient
import Testing

/// The engine-specific half of the status scenarios (`StatusPairTests`): every step is the same
/// on both engines, only its SQL differs. A lab with two tables: `lag_probe`, whose row 1 the
/// primary stamps with its own clock (the independent measurement of apply lag: its age read at
/// the DR site with the DR server's clock) and whose other rows are markers that show the data
/// caught up; and `workload`, the steady writes.
protocol StatusPairEngine: AnyObject {
    var lab: Lab { get }
    /// How far the reported apply lag may lie from the probe's age (reported minus probe).
    /// Each engine states why in its own doc comment: how precise its commit times are.
    var tolerance: ClosedRange<Double> { get }
    /// Stamps the probe with the primary's clock (row 1, or a marker row `id`).
    func stamp(_ id: Int) throws
    /// One small transaction of the steady workload.
    func commitLoad() throws
    /// The age of row `id` at the DR site by the DR server's clock; nil while it has not arrived.
    func age(_ id: Int) throws -> Double?
    /// Closes the connections and stops the lab.
    func close()
}

extension StatusPairEngine {
    func stampProbe() throws { try stamp(1) }
    func probeAge() throws -> Double? { try age(1) }
    func arrived(_ id: Int) throws -> Bool { try age(id) != nil }
}

/// The engines the scenarios run on, as test arguments.
enum StatusPairEngineKind: String, CaseIterable, CustomTestStringConvertible {
    case postgresql, mariadb

    var testDescription: String { rawValue }

    /// A lab of this engine with the scenarios' tables.
    func start() throws -> any StatusPairEngine {
        switch self {
        case .postgresql: try PostgresStatusPair()
        case .mariadb: try MariaDBStatusPair()
        }
    }
}

/// PostgreSQL: the tables are created at both sites after `up` (logical replication carries
/// no DDL); commit times are the primary's, in microseconds.
///
/// Tolerance ±1.5 s: with probes 0.5 s apart the true apply lag lies between the newest applied
/// probe's age minus 0.5 s and that age, and the reported figure is at most about a second old
/// (the agents publish their report at least every second).
final class PostgresStatusPair: StatusPairEngine {
    let lab: Lab
    let tolerance: ClosedRange<Double> = -1.5...1.5
    private let primary: PGConnection
    private let dr: PGConnection

    init() throws {
        lab = try Lab()
        do {
            try lab.both(
                """
                CREATE TABLE lag_probe (id int PRIMARY KEY, at timestamptz NOT NULL);
                CREATE TABLE workload (id bigserial PRIMARY KEY, pad text NOT NULL);
                """)
            primary = try lab.primary()
            dr = try lab.dr()
        } catch {
            lab.down()
            throw error
        }
    }

    func stamp(_ id: Int) throws {
        _ = try primary.exec(
            "INSERT INTO lag_probe VALUES (\(id), clock_timestamp()) ON CONFLICT (id) DO UPDATE SET at = excluded.at")
    }

    func commitLoad() throws {
        _ = try primary.exec("INSERT INTO workload (pad) SELECT repeat('x', 200) FROM generate_series(1, 20)")
    }

    func age(_ id: Int) throws -> Double? {
        // A scalar subquery: one row (NULL) also while the row has not arrived.
        Double(
            try dr.scalar("SELECT (SELECT extract(epoch FROM clock_timestamp() - at) FROM lag_probe WHERE id = \(id))")
                ?? "")
    }

    func close() {
        primary.close()
        dr.close()
        lab.down()
    }
}

/// MariaDB: the tables exist before `up` (`--init-sql`: DDL stops capture by design); both
/// servers run in UTC, so a DATETIME(6) stamped with the primary's NOW(6) reads back at the DR
/// site against the DR server's NOW(6).
///
/// Tolerance −1.5 s to +2.5 s: PostgreSQL's ±1.5 s (probes 0.5 s apart, a report up to a second
/// old), plus up to 1 s more upward because the binlog stamps each commit with whole seconds:
/// the capture takes a commit at 12:00:00.9 as made at 12:00:00, so every age it reports may
/// be up to a second larger than the truth, never smaller (the figures' "never flattering" rule).
final class MariaDBStatusPair: StatusPairEngine {
    static let schema = """
        CREATE TABLE lag_probe (id INT PRIMARY KEY, at DATETIME(6) NOT NULL) ENGINE=InnoDB;
        CREATE TABLE workload (id BIGINT AUTO_INCREMENT PRIMARY KEY, pad VARCHAR(255) NOT NULL) ENGINE=InnoDB;
        """
    let lab: Lab
    let tolerance: ClosedRange<Double> = -1.5...2.5
    private let primary: MySQLConnection
    private let dr: MySQLConnection

    init() throws {
        lab = try Lab(engine: "mariadb", initSQL: Self.schema)
        do {
            primary = try lab.mariadb("primary")
            dr = try lab.mariadb("dr")
        } catch {
            lab.down()
            throw error
        }
    }

    func stamp(_ id: Int) throws {
        _ = try primary.execute("REPLACE INTO lag_probe VALUES (\(id), NOW(6))")
    }

    func commitLoad() throws {
        _ = try primary.execute("INSERT INTO workload (pad) SELECT REPEAT('x', 200) FROM seq_1_to_20")
    }

    func age(_ id: Int) throws -> Double? {
        let result = try dr.query(
            "SELECT TIMESTAMPDIFF(MICROSECOND, at, NOW(6)) / 1000000 FROM lag_probe WHERE id = \(id)")
        return result.rawRows.isEmpty ? nil : Double(result.value(row: 0, column: 0) ?? "")
    }

    func close() {
        primary.close()
        dr.close()
        lab.down()
    }
}
