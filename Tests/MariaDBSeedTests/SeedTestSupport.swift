import ApplyKit
import Foundation
import Logging
import MariaDBApply
import MariaDBEngine
import MariaDBSeed
import MySQLClient
import TandemCore
import TandemSeed
import TandemTestSupport
import TandemVerify
import Testing

/// Shared pieces of the MariaDB seed tests: the fixture tables, the primary's binlog read back
/// with the real decoder, and the applier writing copied rows at a second server.
enum Seeding: ChangeFixture {
    static let stream = StreamID("seed-test")!
    static let defaultSchema = "app"
    static let nativeInteger = "bigint"

    /// Rows of `types` past the fixture's edge rows: every type, NULLs every 13th row.
    static let generatedRows = 12_000

    static func setUpPrimary(_ server: MariaDBServer) throws {
        try server.createDatabase(defaultSchema)
        let connection = try server.connect(database: defaultSchema)
        defer { connection.close() }
        _ = try connection.execute("SET time_zone = '+00:00'")
        _ = try connection.execute("SET max_recursive_iterations = 100000")
        // Tandem's own table, as capture setup creates it.
        _ = try connection.execute("CREATE DATABASE IF NOT EXISTS tandem")
        _ = try connection.execute(SeedMarkTable.create)
        for statement in [
            MariaDBTypesFixture.createTable, MariaDBTypesFixture.insertRows,
            """
            INSERT INTO types VALUES
             (4, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0.1, 0.1, 0.1, b'1', '0000-00-00', '00:00:00', '0000-00-00 00:00:00',
              '0000-00-00 00:00:00', 0, 'NULL', 'NULL', x'4e554c4c', x'4e554c4c', 'NULL', 'NULL', 'NULL', 'NULL', 'NULL',
              'NULL', 'NULL', 'NULL', 'c', 'x,y,z', 'null'),
             (5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1.5, 16777217, 0.30000000000000004, b'11', '2024-01-01', '12:00:00.5',
              '2024-01-01 12:00:00.5', '2024-01-01 12:00:00.5', 1999, 'x ', 'x ', x'20', x'20', ' ', ' ', ' ', ' ', ' ',
              ' ', ' ', ' ', 'a', 'y', '"x"'),
             (6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3.4028234e38, 1.7976931348623157e308, b'0', '2024-01-01', '00:00:00',
              '2024-01-01 00:00:00', '2024-01-01 00:00:00', 2024, '', '', x'', x'', '', '', '', '', '', '', '', '', 'a',
              '', '{}'),
             (7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1.17549435e-38, 4.9406564584124654e-324, b'0', '2024-01-01',
              '00:00:00', '2024-01-01 00:00:00', '2024-01-01 00:00:00', 2024, '', '', x'', x'', '', '', '', '', '', '',
              '', '', 'a', '', '{}')
            """,
            """
            INSERT INTO types
            WITH RECURSIVE s(n) AS (SELECT 100 UNION ALL SELECT n + 1 FROM s WHERE n < \(99 + generatedRows))
            SELECT n, IF(n % 13 = 0, NULL, n % 256 - 128), n % 256, n % 65536 - 32768, n % 65536, n * 613 - 8388608,
              n * 977, n * 104729 - 2147483648, n * 354000, n * 1000000007 - 9223372036854775807, CAST(n AS UNSIGNED) * 1500000000000000,
              IF(n % 13 = 0, NULL, n * 1.000000000000000000000000000001 - 6000), n / 7, n / 3 + 1e-10 * n,
              IF(n % 13 = 0, NULL, n * 3), '2000-01-01' + INTERVAL n DAY, SEC_TO_TIME(n * 37.125) - INTERVAL 1 HOUR,
              TIMESTAMP('1990-06-01 10:00:00.000001') + INTERVAL n * 3607 SECOND,
              FROM_UNIXTIME(1000000000 + n * 86399.5), 1901 + n % 255, CONCAT('c', n), CONCAT('Grüße ', n, ' 🎉'),
              UNHEX(LPAD(HEX(n), 6, '0')), UNHEX(HEX(n)), UNHEX(REPEAT('00ff', n % 7)), UNHEX(HEX(n * n)),
              IF(n % 13 = 0, NULL, REPEAT(x'c0', n % 300)), x'', CONCAT('t', n), REPEAT('ü', n % 50), CONCAT('m ', n, ' '),
              IF(n % 13 = 0, NULL, CONCAT('日本', n)), ELT(1 + n % 3, 'a', 'b', 'c'), ELT(1 + n % 4, '', 'x', 'y,z', 'x,y,z'),
              IF(n % 13 = 0, NULL, JSON_OBJECT('n', n, 's', CONCAT('é', n)))
            FROM s
            """,
            "CREATE TABLE pairs (a INT, b VARCHAR(20) COLLATE utf8mb4_unicode_ci, v INT, PRIMARY KEY (a, b))",
            "INSERT INTO pairs VALUES " + pairRows.map { "(\($0.0), '\($0.1)', \($0.2))" }.joined(separator: ", "),
            "CREATE TABLE nokey (x INT)",
            "CREATE TABLE bytekey (k VARBINARY(8) PRIMARY KEY, v INT, KEY by_v (v))",
            "INSERT INTO bytekey VALUES (x'', 1), (x'00', 2), (x'0000', 3), (x'ff', 4), (x'41', 5), (x'61', 6)",
        ] {
            _ = try connection.execute(statement)
        }
    }

    /// Text keys distinct under `utf8mb4_unicode_ci`, mixed case and not ASCII.
    static let texts = ["alpha", "Beta", "gamma", "Delta", "épée", "Zeta", "über", "日本", "_x", " space", "Omega"]

    static let pairRows: [(Int, String, Int)] = (1...3).flatMap { a in texts.map { (a, $0, a * 10) } }

    static func login(_ server: MariaDBServer) -> MySQLLogin {
        MySQLLogin(host: server.host, port: server.port, user: server.user, password: server.password)
    }

    static func source(_ server: MariaDBServer) throws -> MariaDBSeedSource {
        try MariaDBSeedSource(login: login(server))
    }

    /// Reads every chunk of `table`, checking the chunk contract as it goes.
    static func copy(
        _ source: MariaDBSeedSource, _ table: SeedTable, rows: Int, run: UInt64 = 7
    ) throws -> (chunks: [CopyChunk], marks: [SeedMark]) {
        var chunks: [CopyChunk] = []
        var marks: [SeedMark] = []
        var after: KeyValue?
        while true {
            let mark = SeedMark(run: run, chunk: UInt64(chunks.count))
            var offered: [RowChange]?
            let chunk = try source.readChunk(table, after: after, rows: rows, mark: mark) { offered = $0 }
            #expect(offered == chunk.rows, "offer received the chunk's rows")
            chunks.append(chunk)
            marks.append(mark)
            if chunk.exhausted { break }
            #expect(chunk.rows.count == rows, "a chunk short of rows is the last one")
            after = chunk.last
            if chunks.count > 10_000 { throw HarnessError(operation: "copy \(table)", reason: "the chunks do not end") }
        }
        return (chunks, marks)
    }

    /// Every transaction of the server's binlog files, decoded by the capture's decoder with the
    /// server's own collation table.
    static func binlogTransactions(_ server: MariaDBServer) throws -> [Transaction] {
        let connection = try server.connect()
        defer { connection.close() }
        _ = try connection.execute("FLUSH BINARY LOGS")
        let collations = try connection.query("SELECT ID, CHARACTER_SET_NAME FROM information_schema.COLLATIONS")
        var names: [UInt32: String] = [:]
        for row in collations.rows {
            if let id = row[0].flatMap({ UInt32($0) }), let name = row[1] { names[id] = name }
        }
        var decoder = BinlogDecoder(startPosition: MariaDBGTIDList(), charsets: MariaDBCharsets(charsetNames: names))
        let index = try String(contentsOfFile: server.binlogDirectory + "/mariadb-bin.index", encoding: .utf8)
        var transactions: [Transaction] = []
        for line in index.split(separator: "\n") where !line.isEmpty {
            let name = line.split(separator: "/").last.map(String.init) ?? String(line)
            let path = server.binlogDirectory + "/" + name
            let bytes = [UInt8](try #require(FileManager.default.contents(atPath: path), "cannot read \(path)"))
            for range in try BinlogFile.split(bytes).events {
                if case .transaction(let transaction)? = try decoder.feed(bytes[range]) {
                    transactions.append(transaction)
                }
            }
        }
        return transactions
    }

    /// Applies `chunks` at `server` with the real MariaDB sink, one source transaction per chunk.
    static func apply(_ chunks: [CopyChunk], at server: MariaDBServer, sequence: inout UInt64) throws {
        let sink = try MariaDBSink(
            host: server.host, port: server.port, user: server.user, password: server.password, stream: stream,
            logger: Logger(label: "seed-test"))
        defer { sink.close() }
        var transactions: [Transaction] = []
        for chunk in chunks where !chunk.rows.isEmpty {
            sequence += 1
            transactions.append(
                Transaction(
                    commitPosition: .mariadb(
                        try MariaDBGTIDList([MariaDBGTID(domain: 0, server: 1, sequence: sequence)])),
                    commitTime: Timestamp(microsecondsSinceEpoch: 1_700_000_000_000_000), origin: "0-1",
                    changes: chunk.rows))
        }
        var batch = try sink.checkpoint().sequence
        for slice in stride(from: 0, to: transactions.count, by: 4) {
            batch += 1
            _ = try sink.apply([try Self.batch(batch, Array(transactions[slice..<min(slice + 4, transactions.count)]))])
        }
    }

    static func showCreate(_ server: MariaDBServer, _ table: String) throws -> String? {
        let connection = try server.connect()
        defer { connection.close() }
        return try connection.query("SHOW CREATE TABLE \(table)").value(row: 0, column: 1)
    }

    static func target(_ server: MariaDBServer) throws -> MariaDBSeedTarget {
        try MariaDBSeedTarget(login: login(server))
    }
}

/// Where another thread's statement got to, shared with the test.
final class Progress: @unchecked Sendable {
    // @unchecked: every member is guarded by `lock`.
    private let lock = NSLock()
    private var finished: Date?
    private var failure: String?

    func finish(_ error: (any Error)?) {
        lock.withLock {
            finished = Date()
            failure = error.map { "\($0)" }
        }
    }

    var finishedAt: Date? { lock.withLock { finished } }
    var error: String? { lock.withLock { failure } }
}
