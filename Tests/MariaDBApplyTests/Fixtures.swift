import ApplyKit
import Logging
import MariaDBApply
import MySQLClient
import TandemAgent
import TandemCodec
import TandemCore
import TandemTestSupport

/// Hand-built batches for the MariaDB sink: relations, transactions and frames as MariaDB
/// capture produces them (positions are GTID states), encoded by the real codec.
enum Fixture: ChangeFixture {
    static let stream = StreamID("orders-eu")!
    static let defaultSchema = "app"
    static let nativeInteger = "bigint"
    static let logger = Logger(label: "mariadb-apply-tests")

    /// The GTID state after source transaction `sequence` of domain 0, server 1.
    static func gtid(_ sequence: UInt64, domain: UInt32 = 0) -> Position {
        .mariadb(try! MariaDBGTIDList([MariaDBGTID(domain: domain, server: 1, sequence: sequence)]))
    }

    /// `app.items(id bigint key, name varchar, note text, qty bigint)` as the source describes it.
    static let items = relation(
        "items",
        [
            column("id", key: true), column("name", .text, native: "varchar(100)"),
            column("note", .text, native: "text"),
            column("qty"),
        ])

    static func item(_ id: Int64, _ name: String, _ note: Value = .null, _ qty: Int64 = 0) -> [Value] {
        [.int(id), .text(name), note, .int(qty)]
    }

    static let itemsQuery = "SELECT id, name, note, qty FROM app.items ORDER BY id"

    static let baseTime: Int64 = 1_700_000_000_000_000

    static func transaction(
        _ sequence: UInt64, _ changes: [RowChange], chunk: TransactionChunk = .whole, domain: UInt32 = 0
    ) -> Transaction {
        Transaction(
            commitPosition: gtid(sequence, domain: domain),
            commitTime: Timestamp(microsecondsSinceEpoch: baseTime + Int64(sequence)), origin: "\(domain)-1",
            chunk: chunk, changes: changes)
    }

    static func sink(
        _ server: MariaDBServer, user: String? = nil, password: String? = nil,
        domainID: UInt32 = MariaDBSink.defaultDomainID,
        foreignKeyChecks: Bool = true, allowTriggers: Bool = false
    ) throws -> MariaDBSink {
        try MariaDBSink(
            host: server.host, port: server.port, user: user ?? server.user,
            password: user == nil ? server.password : password, stream: stream, domainID: domainID,
            foreignKeyChecks: foreignKeyChecks, allowTriggers: allowTriggers, logger: logger)
    }

    /// Runs statements one by one as the harness user (all privileges).
    static func exec(_ server: MariaDBServer, _ statements: String...) throws {
        let connection = try server.connect()
        defer { connection.close() }
        for statement in statements { try connection.execute(statement) }
    }

    /// The DR table orders its columns differently from the source: mapping is by name.
    static func createItems(_ server: MariaDBServer) throws {
        try exec(
            server, "CREATE DATABASE IF NOT EXISTS app",
            "CREATE TABLE app.items (qty BIGINT, note MEDIUMTEXT, name VARCHAR(100), id BIGINT PRIMARY KEY) ENGINE=InnoDB"
        )
    }

    /// Rows as text, NULL as "∅", in the query's order.
    static func rows(_ server: MariaDBServer, _ sql: String) throws -> [[String]] {
        let connection = try server.connect()
        defer { connection.close() }
        return try connection.query(sql).rows.map { $0.map { $0 ?? "∅" } }
    }

    static func count(_ server: MariaDBServer, _ table: String) throws -> Int {
        Int(try rows(server, "SELECT COUNT(*) FROM \(table)").first?.first ?? "") ?? -1
    }

    /// The checkpoint row as stored: sequence, position, commit_time (UTC).
    static func checkpointRow(_ server: MariaDBServer) throws -> [String]? {
        try rows(
            server,
            "SELECT sequence, position, DATE_FORMAT(commit_time, '%Y-%m-%d %H:%i:%s.%f') FROM tandem.apply_checkpoint WHERE stream = '\(stream)'"
        ).first
    }
}

extension Error {
    /// The error as the sink's typed error, for assertions.
    var applyError: ApplyError? { self as? ApplyError }
}
