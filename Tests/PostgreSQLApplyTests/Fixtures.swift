import ApplyKit
import Logging
import PGClient
import PostgreSQLApply
import TandemAgent
import TandemCodec
import TandemCore
import TandemTestSupport

/// Hand-built batches for the sink: relations, transactions and frames exactly as capture
/// would produce them, encoded by the real codec.
enum Fixture: ChangeFixture {
    static let stream = StreamID("orders-eu")!
    static let defaultSchema = "public"
    static let nativeInteger = "int8"
    static let logger = Logger(label: "postgresql-apply-tests")

    static func lsn(_ value: UInt64) -> Position { .postgresql(LSN(value)) }

    /// `items(id int8 key, name text, note text, qty int8)` as the source describes it.
    static let items = relation(
        "items",
        [
            column("id", key: true), column("name", .text, native: "text"), column("note", .text, native: "text"),
            column("qty"),
        ])

    static func transaction(
        _ position: UInt64, _ changes: [RowChange], chunk: TransactionChunk = .whole,
        time: Int64 = 1_700_000_000_000_000
    ) -> Transaction {
        Transaction(
            commitPosition: lsn(position), commitTime: Timestamp(microsecondsSinceEpoch: time + Int64(position)),
            chunk: chunk, changes: changes)
    }

    static func sink(_ server: PostgresServer, database: String = "postgres", originWait: Duration = .seconds(5))
        throws -> PostgreSQLSink
    {
        try PostgreSQLSink(
            conninfo: server.conninfo(database: database, extra: ["application_name": "tandem-apply-under-test"]),
            stream: stream, logger: logger, originWait: originWait)
    }

    static func createItems(_ server: PostgresServer) throws {
        // The DR table orders its columns differently from the source: mapping is by name.
        try server.exec("CREATE TABLE items (qty int8, note text, name text, id int8 PRIMARY KEY)")
    }

    /// Rows as text, NULL as "∅", in the query's order.
    static func rows(_ server: PostgresServer, _ sql: String) throws -> [[String]] {
        try server.exec(sql).rows.map { $0.map { $0 ?? "∅" } }
    }

    static func count(_ server: PostgresServer, _ table: String) throws -> Int {
        Int(try server.exec("SELECT count(*) FROM \(table)").value(row: 0, column: 0) ?? "") ?? -1
    }

    /// The checkpoint row as stored: sequence, position, commit_time.
    static func checkpointRow(_ server: PostgresServer) throws -> [String]? {
        try rows(
            server,
            "SELECT sequence, position, commit_time AT TIME ZONE 'UTC' FROM tandem.apply_checkpoint WHERE stream = '\(stream)'"
        ).first
    }
}

extension Error {
    /// The error as the sink's typed error, for assertions.
    var applyError: ApplyError? { self as? ApplyError }
}
