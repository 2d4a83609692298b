import PGClient
import TandemTestSupport
import Testing

/// `PGConnection`'s pipeline mode (PGClient) against a real server.
@Suite("libpq pipeline mode", .serialized)
struct PipelineTests {
    @Test("outcomes come back in order; after a failure the rest are skipped until the sync")
    func outcomes() async throws {
        try await withPostgres { server in
            let connection = try server.connect()
            defer { connection.close() }
            _ = try connection.exec("CREATE TABLE t (id int PRIMARY KEY, v text)")
            try connection.enterPipelineMode()
            #expect(connection.isInPipelineMode)
            try connection.sendPrepare(name: "ins", sql: "INSERT INTO t VALUES ($1, $2)", parameterCount: 2)
            try connection.sendPrepared(name: "ins", parameters: ["1", "one"])
            try connection.sendPrepared(name: "ins", parameters: ["2", nil])
            try connection.sendQuery("SELECT count(*) FROM t WHERE v IS NULL")
            try connection.sendPrepared(name: "ins", parameters: ["1", "duplicate"])
            try connection.sendQuery("SELECT 1")
            try connection.sendQuery("DEALLOCATE ALL")
            try connection.pipelineSync()
            var shapes: [String] = []
            for _ in 0..<7 {
                switch try connection.nextPipelineOutcome() {
                case .success(let result):
                    shapes.append(
                        "ok " + (result.rowCount > 0 ? result.value(row: 0, column: 0) ?? "" : result.commandStatus))
                case .failure(let error): shapes.append("failed " + (error.sqlState ?? "?"))
                case .skipped: shapes.append("skipped")
                }
            }
            try connection.awaitPipelineSync()
            #expect(shapes == ["ok ", "ok INSERT 0 1", "ok INSERT 0 1", "ok 1", "failed 23505", "skipped", "skipped"])
            // A new round after the sync runs normally; the statement was not deallocated.
            try connection.sendQuery("DEALLOCATE ALL")
            try connection.sendPrepared(name: "ins", parameters: ["3", "three"])
            try connection.pipelineSync()
            guard case .success = try connection.nextPipelineOutcome() else {
                Issue.record("DEALLOCATE ALL failed"); return
            }
            guard case .failure(let gone) = try connection.nextPipelineOutcome() else {
                Issue.record("statement survived"); return
            }
            #expect(gone.sqlState == "26000")
            try connection.awaitPipelineSync()
            try connection.exitPipelineMode()
            #expect(!connection.isInPipelineMode)
            // Without BEGIN, everything up to a sync is one implicit transaction: the failure
            // took the two inserts before it along.
            #expect(try connection.exec("SELECT count(*) FROM t").value(row: 0, column: 0) == "0")
        }
    }

    @Test("a NUL byte is refused before sending; an interrupted round is abandoned back to idle")
    func abandon() async throws {
        try await withPostgres { server in
            let connection = try server.connect()
            defer { connection.close() }
            _ = try connection.exec("BEGIN")
            #expect(connection.isInTransaction)
            try connection.enterPipelineMode()
            try connection.sendQuery("SELECT $1::text", parameters: ["fine"])
            let error = #expect(throws: PGError.self) {
                try connection.sendQuery("SELECT $1::text", parameters: ["a\u{0}b"])
            }
            #expect(error?.kind == .invalidArgument)
            #expect(connection.abandonPipeline())
            #expect(!connection.isInPipelineMode)
            _ = try connection.exec("ROLLBACK")
            #expect(!connection.isInTransaction)
            #expect(try connection.exec("SELECT 42").value(row: 0, column: 0) == "42")
        }
    }
}
