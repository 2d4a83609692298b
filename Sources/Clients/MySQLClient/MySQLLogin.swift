/// Where a MariaDB server is and whom to log in as: what a site's `[database]` settings say,
/// apart from what one kind of connection adds (timeouts, the replica id of a binlog dump).
/// One value, so that capture and apply at a site reach the same server the same way.
public struct MySQLLogin: Sendable, Equatable {
    /// `nil` or `"localhost"` connects through the Unix socket (`unixSocket`, or the client
    /// library's default); `127.0.0.1` forces TCP.
    public var host: String?
    public var port: Int
    public var user: String
    public var password: String?
    /// The session's default database; Tandem's statements name their schema, so nothing
    /// depends on it.
    public var database: String?
    public var unixSocket: String?

    public init(
        host: String? = "127.0.0.1", port: Int = 3306, user: String, password: String? = nil,
        database: String? = nil, unixSocket: String? = nil
    ) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.unixSocket = unixSocket
    }
}

extension MySQLConnection {
    /// Connects and authenticates as `login` says; the timeouts are `init(host:…)`'s.
    public convenience init(
        _ login: MySQLLogin, connectTimeout: Int = 10, readTimeout: Int? = nil, writeTimeout: Int? = nil
    ) throws(MySQLError) {
        try self.init(
            host: login.host, port: login.port, user: login.user, password: login.password, database: login.database,
            unixSocket: login.unixSocket, connectTimeout: connectTimeout, readTimeout: readTimeout,
            writeTimeout: writeTimeout)
    }
}
