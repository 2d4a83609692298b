import TandemCore

/// Turns a parsed TOML document into a `SiteConfig`, validating every value.
///
/// Pure: it reads no files and no environment. The one piece of I/O a
/// configuration needs — reading the password — happens afterwards in
/// `PasswordResolver`, so nearly all validation is testable on strings.
/// Sections are decoded in file order (site, database, link, …) and the first
/// problem is reported; cross-section rules come last.
struct SiteConfigDecoder {
    let root: [String: TOMLNode]
    let context: ErrorContext
    /// Absolute directory against which relative paths are resolved.
    let baseDirectory: String

    func decode() throws(ConfigError) -> SiteConfig {
        try ConfigSchema.checkStructure(root, context)
        let site = try decodeSite()
        let database = try decodeDatabase()
        let link = try decodeLink(site: site)
        let tables = try decodeTables()
        let spool = try decodeSpool()
        let batch = try decodeBatch()
        let log = try decodeLog()
        let control = try decodeControl(spool: spool)
        let metrics = try decodeMetrics()
        let alerts = try decodeAlerts()
        if let limit = spool.maxBytes, limit < batch.maxBytes {
            throw context.error(
                "spool.max_bytes",
                "\(limit) is smaller than one batch (batch.max_bytes = \(batch.maxBytes))",
                hint: "A spool must hold at least one batch; raise spool.max_bytes (tens of GiB is typical).")
        }
        return SiteConfig(
            site: site, database: database, link: link, tables: tables, spool: spool, batch: batch, log: log,
            control: control, metrics: metrics, alerts: alerts)
    }

    private func section(_ name: String) -> Section {
        Section(name, in: root, context: context)
    }

    // MARK: [site]

    private func decodeSite() throws(ConfigError) -> SiteSection {
        let s = section("site")
        let name = try s.requiredString(
            "name", expected: "this site's name, such as \"idc\"",
            hint: "Use the name carried by this site's certificate (CN/SAN).")
        try checkSiteName(name, s, "name", example: "\"idc\" or \"cloud-eu1\"")
        let pair = try s.requiredString(
            "pair", expected: "the name of the replication pair, such as \"acme-dr\"",
            hint: "Both sites of a pair must use the same pair name.")
        try checkSiteName(pair, s, "pair", example: "\"acme-dr\"")
        return SiteSection(name: name, pair: pair)
    }

    /// Names travel in certificates, file names and metric labels; keep them
    /// to a conservative, DNS-like alphabet.
    private func checkSiteName(
        _ value: String, _ s: Section, _ key: String, example: String
    ) throws(ConfigError) {
        let hint = "Use a short name such as \(example)."
        let allowed = value.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
        guard allowed, (1...63).contains(value.count) else {
            let length = value.count > 63 ? " (\(value.count) characters)" : ""
            throw s.error(
                key, "expected 1–63 letters, digits, \"-\", \"_\" or \".\", got \(quoted(value))\(length)",
                hint: hint)
        }
        guard let first = value.first, first.isLetter || first.isNumber else {
            throw s.error(key, "must start with a letter or digit, got \(quoted(value))", hint: hint)
        }
    }

    // MARK: [database]

    private static let postgresqlOnlyKeys = ["sslmode", "application_name"]
    private static let binlogOnlyKeys = ["server_id", "unix_socket"]

    private func decodeDatabase() throws(ConfigError) -> DatabaseConfig {
        let d = section("database")
        guard let engine = try d.choice("engine", as: DatabaseEngine.self) else {
            throw d.missing(
                "engine", expected: alternatives(DatabaseEngine.allCases.map(\.rawValue)),
                hint: "Set engine to the kind of database this site runs.")
        }
        let isPostgreSQL = engine == .postgresql
        for key in isPostgreSQL ? Self.binlogOnlyKeys : Self.postgresqlOnlyKeys where d.contains(key) {
            let owners = isPostgreSQL ? "\"mariadb\" or \"mysql\"" : "\"postgresql\""
            throw d.error(
                key, "only applies to engine \(owners), but database.engine is \"\(engine)\"",
                hint: "Remove \(key), or correct database.engine.")
        }

        let host = try d.string("host")
        if let host { try checkDatabaseHost(host, engine: engine, d) }
        var unixSocket: String?
        if !isPostgreSQL, let socket = try d.string("unix_socket") {
            guard socket.hasPrefix("/") else {
                throw d.error(
                    "unix_socket", "expected an absolute path, got \(quoted(socket))",
                    hint: "Use the server's socket path, e.g. \"/run/mysqld/mysqld.sock\".")
            }
            if host != nil {
                throw d.error(
                    "unix_socket", "set either host or unix_socket, not both",
                    hint: "Remove host to connect through the socket, or unix_socket to use TCP.")
            }
            if d.contains("port") {
                throw d.error(
                    "port", "has no effect when unix_socket is set",
                    hint: "Remove port, or remove unix_socket to connect over TCP.")
            }
            unixSocket = socket
        }
        if host == nil && unixSocket == nil {
            throw d.missing(
                "host", expected: "the database server's host name or address",
                hint: isPostgreSQL
                    ? "Use \"127.0.0.1\" for a local server, or the socket directory such as \"/var/run/postgresql\"."
                    : "Use \"127.0.0.1\" for a local server, or set unix_socket instead.")
        }
        let port =
            try d.integer("port", range: HostPort.portRange, meaning: "a port number")
            ?? DatabaseConfig.defaultPort(for: engine)
        let user = try d.requiredString(
            "user", expected: "the database user the agent logs in as",
            hint: "Set user to the replication user created for Tandem.")
        let database: String?
        if isPostgreSQL {
            database = try d.requiredString(
                "database", expected: "the PostgreSQL database to replicate",
                hint: "Logical decoding works per database; set database to its name.")
        } else {
            database = try d.string("database")
        }
        let passwordSource = try decodePasswordSource(d)

        let settings: EngineSettings
        if isPostgreSQL {
            let sslMode = try d.choice("sslmode", as: PostgreSQLSSLMode.self) ?? .prefer
            let applicationName =
                try d.string("application_name") ?? PostgreSQLSettings.defaultApplicationName
            guard applicationName.utf8.count <= 63,
                applicationName.allSatisfy({ $0.asciiValue.map { (0x20..<0x7F).contains($0) } ?? false })
            else {
                throw d.error(
                    "application_name",
                    "expected at most 63 printable ASCII characters, got \(quoted(applicationName))",
                    hint: "PostgreSQL would truncate or mangle it; use a short plain name.")
            }
            settings = .postgresql(PostgreSQLSettings(sslMode: sslMode, applicationName: applicationName))
        } else {
            guard
                let serverID = try d.integer(
                    "server_id", range: 1...Int(UInt32.max), meaning: "a replica server id")
            else {
                throw d.missing(
                    "server_id", expected: "a replica server id between 1 and \(UInt32.max) for binlog capture",
                    hint: "Pick an id that no other replica or server of this source uses.")
            }
            settings = .binlog(BinlogSettings(serverID: UInt32(serverID), unixSocket: unixSocket))
        }
        return DatabaseConfig(
            engine: engine, host: host, port: port, user: user, database: database,
            passwordSource: passwordSource, password: nil, engineSettings: settings)
    }

    private func checkDatabaseHost(_ host: String, engine: DatabaseEngine, _ d: Section) throws(ConfigError) {
        if host.hasPrefix("/") {
            guard engine == .postgresql else {
                throw d.error(
                    "host", "expected a host name or address, got the path \(quoted(host))",
                    hint: "To connect through a Unix socket, set unix_socket instead of host.")
            }
            return
        }
        guard HostPort.isHostName(host) || HostPort.isIPv6Literal(host) else {
            let hint =
                host.contains(":") && !HostPort.isIPv6Literal(host)
                ? "Give the port separately: port = 5432."
                : "Use a host name such as \"db1.example.net\" or an address such as \"127.0.0.1\"."
            throw d.error("host", "expected a host name or address, got \(quoted(host))", hint: hint)
        }
    }

    private func decodePasswordSource(_ d: Section) throws(ConfigError) -> PasswordSource? {
        let file = try d.string("password_file")
        let variable = try d.string("password_env")
        if file != nil && variable != nil {
            throw d.error(
                "password_env", "set only one of password_file and password_env",
                hint: "Keep the one your deployment provides and remove the other.")
        }
        if let file {
            return .file(path: try path(file, d, "password_file"))
        }
        if let variable {
            let validName =
                variable.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
                && !(variable.first?.isNumber ?? true)
            guard validName else {
                throw d.error(
                    "password_env", "expected an environment variable name, got \(quoted(variable))",
                    hint: "Give the variable's name (such as \"TANDEM_DB_PASSWORD\"), not its value.")
            }
            return .environment(variable: variable)
        }
        return nil
    }

    // MARK: [link]

    private enum ModeName: String, CaseIterable {
        case connect, listen
    }

    private func decodeLink(site: SiteSection) throws(ConfigError) -> LinkConfig {
        let l = section("link")
        guard let modeName = try l.choice("mode", as: ModeName.self) else {
            throw l.missing(
                "mode", expected: "\"connect\" or \"listen\"",
                hint: "Exactly one site of the pair connects (usually the one behind a firewall); the other listens.")
        }
        let addressKey = modeName == .connect ? "peer" : "listen"
        let otherKey = modeName == .connect ? "listen" : "peer"
        if l.contains(otherKey) {
            throw l.error(
                otherKey,
                "only used with mode = \"\(otherKey == "peer" ? "connect" : "listen")\", "
                    + "but link.mode is \"\(modeName.rawValue)\"",
                hint: "Remove \(otherKey), or correct link.mode.")
        }
        let example = modeName == .connect ? "\"dr.example.net:7400\"" : "\"0.0.0.0:7400\""
        let addressText = try l.requiredString(
            addressKey,
            expected: modeName == .connect ? "the peer's host:port" : "the local host:port to listen on",
            hint: "Set \(addressKey) = \(example).")
        let address: (host: String, port: Int)
        switch HostPort.parse(addressText) {
        case .success(let parsed): address = parsed
        case .failure(let problem):
            throw l.error(
                addressKey, "expected host:port such as \(example), got \(quoted(addressText)): \(problem.text)",
                hint: "Write a host name or address, a colon and a port number (1–65535).")
        }
        let mode: LinkMode =
            modeName == .connect
            ? .connect(host: address.host, port: address.port) : .listen(host: address.host, port: address.port)

        let peerSite = try l.requiredString(
            "peer_site", expected: "the other site's name, as carried by its certificate",
            hint: "Set peer_site to the [site] name configured at the other site.")
        try checkSiteName(peerSite, l, "peer_site", example: "\"cloud\" or \"idc\"")
        if peerSite == site.name {
            throw l.error(
                "peer_site", "must name the other site, but equals site.name (\(quoted(site.name)))",
                hint: "Set peer_site to the name of the site at the other end of the link.")
        }
        let ca = try requiredPath(l, "ca", expected: "the pair CA's PEM file")
        let certificate = try requiredPath(l, "certificate", expected: "this site's PEM certificate")
        let key = try requiredPath(l, "key", expected: "the private key of this site's certificate")
        return LinkConfig(mode: mode, peerSite: peerSite, caFile: ca, certificateFile: certificate, keyFile: key)
    }

    // MARK: [tables]

    private func decodeTables() throws(ConfigError) -> TableSelection {
        let t = section("tables")
        let include = try patterns(t, "include") ?? [.everything]
        if include.isEmpty {
            throw t.error(
                "include", "is empty, which would replicate no table at all",
                hint: "List patterns such as \"public.*\", or remove include to replicate every table.")
        }
        let exclude = try patterns(t, "exclude") ?? []
        return TableSelection(include: include, exclude: exclude)
    }

    private func patterns(_ t: Section, _ key: String) throws(ConfigError) -> [TablePattern]? {
        guard let texts = try t.stringArray(key) else { return nil }
        var result: [TablePattern] = []
        for (index, text) in texts.enumerated() {
            guard let pattern = TablePattern(text) else {
                let reason = TablePattern.problem(with: text) ?? "it is malformed"
                throw t.error(
                    key, "entry \(index + 1), \(quoted(text)), is not a schema.table pattern: \(reason)",
                    hint: "Write schema.table, using * as a wildcard, e.g. \"public.*\" or \"sales.order_*\".")
            }
            result.append(pattern)
        }
        return result
    }

    // MARK: [spool], [batch], [log]

    private func decodeSpool() throws(ConfigError) -> SpoolConfig {
        let s = section("spool")
        let directory = try requiredPath(s, "directory", expected: "the directory for spooled batches")
        let maxBytes = try s.size("max_bytes")
        return SpoolConfig(directory: directory, maxBytes: maxBytes)
    }

    private func decodeBatch() throws(ConfigError) -> BatchConfig {
        let b = section("batch")
        let maxBytes = try b.size("max_bytes") ?? BatchConfig.defaultMaxBytes
        let range = BatchConfig.maxBytesRange
        guard range.contains(maxBytes) else {
            throw b.error(
                "max_bytes", "expected a size between \(range.lowerBound) and \(range.upperBound), got \(maxBytes)",
                hint: "Batches of a few MiB are the sweet spot; omit max_bytes for the default of 8MiB.")
        }
        let delay =
            try b.integer("max_delay_ms", range: BatchConfig.maxDelayMillisecondsRange, meaning: "milliseconds")
        let level =
            try b.integer("compression_level", range: BatchConfig.compressionLevelRange, meaning: "a zstd level")
        return BatchConfig(
            maxBytes: maxBytes, maxDelay: delay.map { .milliseconds($0) } ?? BatchConfig.defaultMaxDelay,
            compressionLevel: level ?? BatchConfig.defaultCompressionLevel)
    }

    private func decodeLog() throws(ConfigError) -> LogConfig {
        let l = section("log")
        return LogConfig(
            level: try l.choice("level", as: LogLevel.self) ?? .info,
            format: try l.choice("format", as: LogFormat.self) ?? .text)
    }

    // MARK: [control], [metrics], [alerts]

    private func decodeControl(spool: SpoolConfig) throws(ConfigError) -> ControlConfig {
        let c = section("control")
        var control = ControlConfig.defaults(spoolDirectory: spool.directory)
        if let socket = try c.string("socket") { control.socket = try path(socket, c, "socket") }
        if control.socket.utf8.count > ControlConfig.maximumSocketPathBytes {
            throw c.error(
                "socket",
                "the control socket path \(quoted(control.socket)) is \(control.socket.utf8.count) bytes; "
                    + "a UNIX socket path holds at most \(ControlConfig.maximumSocketPathBytes)",
                hint: "Set control.socket to a shorter path, such as \"/run/tandem/\(site(c))\".sock\".")
        }
        for key in ["monitor_group", "operator_group"] {
            guard let group = try c.string(key) else { continue }
            guard Self.isGroupName(group) else {
                throw c.error(
                    key, "\(quoted(group)) is not a group name",
                    hint: "Use a system group name: letters, digits, '-', '_' and '.', starting with a letter or '_'.")
            }
            if key == "monitor_group" { control.monitorGroup = group } else { control.operatorGroup = group }
        }
        if let audit = try c.string("audit_log") { control.auditLog = try path(audit, c, "audit_log") }
        return control
    }

    private func site(_ s: Section) -> String {
        (try? section("site").string("name")).flatMap { $0 } ?? "site"
    }

    static func isGroupName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.utf8.count <= 32,
            first == "_" || ("a"..."z").contains(first) || ("A"..."Z").contains(first)
        else { return false }
        return name.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0)
                || "-_.".unicodeScalars.contains($0)
        }
    }

    private func decodeMetrics() throws(ConfigError) -> MetricsConfig {
        let m = section("metrics")
        guard let text = try m.string("listen") else { return MetricsConfig() }
        switch HostPort.parse(text) {
        case .success(let parsed): return MetricsConfig(listen: parsed)
        case .failure(let problem):
            throw m.error(
                "listen", "expected host:port such as \"127.0.0.1:9464\", got \(quoted(text)): \(problem.text)",
                hint: "Write an address and a port; omit listen to turn the metrics endpoint off.")
        }
    }

    private func decodeAlerts() throws(ConfigError) -> AlertsConfig {
        let a = section("alerts")
        func seconds(_ key: String) throws(ConfigError) -> Duration? {
            try a.integer(key, range: AlertsConfig.secondsRange, meaning: "seconds").map { .seconds($0) }
        }
        return AlertsConfig(
            rpoWarn: try seconds("rpo_warn_seconds") ?? AlertsConfig.defaultRPOWarn,
            applyLagWarn: try seconds("apply_lag_warn_seconds") ?? AlertsConfig.defaultApplyLagWarn,
            stalenessWarn: try seconds("staleness_warn_seconds") ?? AlertsConfig.defaultStalenessWarn)
    }

    // MARK: Paths

    private func requiredPath(_ s: Section, _ key: String, expected: String) throws(ConfigError) -> String {
        let text = try s.requiredString(
            key, expected: expected,
            hint: "Give an absolute path, or one relative to the directory of this file.")
        return try path(text, s, key)
    }

    /// Resolves a path from the file against the file's directory.
    private func path(_ text: String, _ s: Section, _ key: String) throws(ConfigError) -> String {
        if text.hasPrefix("~") {
            throw s.error(
                key, "\(quoted(text)) starts with ~, which is not expanded",
                hint: "Write the full path; relative paths are resolved against this file's directory.")
        }
        return Paths.resolve(text, against: baseDirectory)
    }
}
