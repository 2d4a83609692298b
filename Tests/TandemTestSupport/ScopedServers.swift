/// Runs `body` with a fresh PostgreSQL server and stops and removes the server afterwards —
/// also when `body` throws or the task is cancelled.
///
/// Prefer this over holding a `PostgresServer` in a test: the scope makes the server's lifetime
/// visible and does not depend on when ARC happens to run `deinit`. If `body` fails, its error
/// is the one rethrown (a teardown problem must not hide the test failure); if only teardown
/// fails, that error is thrown.
public func withPostgres<T>(
    _ options: PostgresServer.Options = PostgresServer.Options(),
    isolation: isolated (any Actor)? = #isolation,
    _ body: (PostgresServer) async throws -> T
) async throws -> T {
    let server = try PostgresServer(options)
    let result: T
    do {
        result = try await body(server)
    } catch {
        try? server.stop()
        throw error
    }
    try server.stop()
    return result
}

/// Runs `body` with a fresh MariaDB server and stops and removes the server afterwards — also
/// when `body` throws. Error precedence as in `withPostgres`.
public func withMariaDB<T>(
    _ options: MariaDBServer.Options = MariaDBServer.Options(),
    isolation: isolated (any Actor)? = #isolation,
    _ body: (MariaDBServer) async throws -> T
) async throws -> T {
    let server = try MariaDBServer(options)
    let result: T
    do {
        result = try await body(server)
    } catch {
        try? server.stop()
        throw error
    }
    try server.stop()
    return result
}
