import MySQLClient
import TandemSeed

/// SQL spelling shared by the source and the target.
enum SeedSQL {
    static func quote(_ identifier: String) -> String {
        "`" + identifier.replacing("`", with: "``") + "`"
    }

    static func name(schema: String, table: String) -> String { quote(schema) + "." + quote(table) }

    /// A string literal of any text, whatever the session's escaping rules.
    static func string(_ text: String) -> String { "_utf8mb4 " + MySQLConnection.hexLiteral(Array(text.utf8)) }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}

/// One connection of a seed, opened from a login and opened again after it was lost (the seed
/// retries a failed call, and a retry on a dead connection would fail forever).
final class SeedSession {
    let login: MySQLLogin
    let site: String
    private let settings: [String]
    private var connection: MySQLConnection?

    /// Opens the connection at once, so that a wrong login or a server that is down is reported
    /// by the constructor of the side.
    init(login: MySQLLogin, site: String, settings: [String]) throws(SeedError) {
        self.login = login
        self.site = site
        self.settings = settings
        _ = try open()
    }

    /// The open connection, opened again if the last one was lost.
    func open() throws(SeedError) -> MySQLConnection {
        if let connection, connection.isOpen { return connection }
        let fresh: MySQLConnection
        do {
            fresh = try MySQLConnection(login, connectTimeout: 10)
        } catch {
            throw SeedError(
                "cannot connect to the \(site) MariaDB server (\(Self.target(login))): \(error.message)",
                hint:
                    "Check the \(site) site's [database] settings, that the server runs and accepts the agent's login.")
        }
        do {
            for setting in settings { _ = try fresh.execute(setting) }
        } catch {
            fresh.close()
            throw failure(error, "set up the seed session")
        }
        connection = fresh
        return fresh
    }

    func query(_ sql: String, _ what: String) throws(SeedError) -> MySQLResult {
        let connection = try open()
        do { return try connection.query(sql) } catch {
            lost(error)
            throw failure(error, what)
        }
    }

    func execute(_ sql: String, _ what: String) throws(SeedError) {
        let connection = try open()
        do { _ = try connection.execute(sql) } catch {
            lost(error)
            throw failure(error, what)
        }
    }

    /// Rolls back what the session has open; nothing to do when the connection is gone (the
    /// server rolled it back when it went).
    func rollback() {
        guard let connection, connection.isOpen else { return }
        do { _ = try connection.execute("ROLLBACK") } catch { lost(error) }
    }

    func close() {
        connection?.close()
        connection = nil
    }

    /// Forgets a connection that failed at the link, so the next call opens a new one.
    func lost(_ error: MySQLError) {
        if error.kind == .connectionLost || error.kind == .closed || error.kind == .connection {
            connection?.close()
            connection = nil
        }
    }

    var isLost: Bool { connection == nil }

    func failure(_ error: MySQLError, _ what: String) -> SeedError {
        let hint =
            switch (error.kind, error.code) {
            case (.connection, _), (.connectionLost, _), (.closed, _):
                "The \(site) MariaDB server went away; check it runs and is reachable, then run the seed again."
            case (_, 1205), (_, 1213):
                "Another transaction held the rows too long; the chunk is read again when the seed retries."
            case (_, 1142), (_, 1044), (_, 1227):
                "Grant the agent's user the privileges the seed needs (SELECT and on the tandem schema INSERT, DELETE; at the DR site CREATE, DROP)."
            case (_, 1146), (_, 1054):
                "The table changed since the seed described it; run the seed again."
            default:
                "See the \(site) MariaDB server's error log for details."
            }
        return SeedError("cannot \(what) at the \(site) site: \(error.message)", hint: hint)
    }

    private static func target(_ login: MySQLLogin) -> String {
        if login.host == nil || login.host == "localhost" { return login.unixSocket ?? "default socket" }
        return "\(login.host ?? ""):\(login.port)"
    }
}
