extension SiteConfig {
    /// The effective configuration as TOML: every default filled in, every
    /// path absolute, and the password shown only as `********` with where it
    /// came from. This is what `tandem config check` prints, so an operator
    /// sees what the agent will actually do rather than what the file says.
    ///
    /// Apart from the masked `password` line (which the parser deliberately
    /// rejects), the output parses back to an equal configuration.
    public func renderedForDisplay() -> String {
        var out = TOMLWriter()
        out.comment("Effective configuration: defaults filled in, relative paths resolved")
        out.comment("against the configuration file's directory, secrets masked.")

        out.section("site")
        out.string("name", site.name)
        out.string("pair", site.pair)

        out.section("database")
        out.string("engine", database.engine.rawValue)
        if let host = database.host { out.string("host", host) }
        if database.engineSettings.binlog?.unixSocket == nil { out.integer("port", database.port) }
        out.string("user", database.user)
        if let name = database.database { out.string("database", name) }
        switch database.passwordSource {
        case .file(let path):
            out.string("password_file", path)
            out.line("password = \(tomlQuoted(Secret.mask))  # read from password_file; never displayed")
        case .environment(let variable):
            out.string("password_env", variable)
            out.line("password = \(tomlQuoted(Secret.mask))  # read from $\(variable); never displayed")
        case nil:
            out.comment("no password: trust, peer or socket authentication")
        }
        switch database.engineSettings {
        case .postgresql(let pg):
            out.string("sslmode", pg.sslMode.rawValue)
            out.string("application_name", pg.applicationName)
        case .binlog(let binlog):
            out.integer("server_id", Int(binlog.serverID))
            if let socket = binlog.unixSocket { out.string("unix_socket", socket) }
        }

        out.section("link")
        switch link.mode {
        case .connect:
            out.string("mode", "connect")
            out.string("peer", link.mode.address)
        case .listen:
            out.string("mode", "listen")
            out.string("listen", link.mode.address)
        }
        out.string("peer_site", link.peerSite)
        out.string("ca", link.caFile)
        out.string("certificate", link.certificateFile)
        out.string("key", link.keyFile)

        out.section("tables")
        out.strings("include", tables.include.map(\.description))
        out.strings("exclude", tables.exclude.map(\.description))

        out.section("spool")
        out.string("directory", spool.directory)
        if let limit = spool.maxBytes {
            out.string("max_bytes", limit.description)
        } else {
            out.comment("max_bytes not set: bounded only by free disk space")
        }

        out.section("batch")
        out.string("max_bytes", batch.maxBytes.description)
        out.integer("max_delay_ms", Self.milliseconds(batch.maxDelay))
        out.integer("compression_level", batch.compressionLevel)

        out.section("log")
        out.string("level", log.level.rawValue)
        out.string("format", log.format.rawValue)

        out.section("control")
        out.string("socket", control.socket)
        out.string("monitor_group", control.monitorGroup)
        out.string("operator_group", control.operatorGroup)
        out.string("audit_log", control.auditLog)

        out.section("metrics")
        if let listen = metrics.listen {
            out.string("listen", HostPort.format(host: listen.host, port: listen.port))
        } else {
            out.comment("listen not set: no metrics endpoint")
        }

        out.section("alerts")
        out.integer("rpo_warn_seconds", Int(alerts.rpoWarn.components.seconds))
        out.integer("apply_lag_warn_seconds", Int(alerts.applyLagWarn.components.seconds))
        out.integer("staleness_warn_seconds", Int(alerts.stalenessWarn.components.seconds))
        return out.text
    }

    private static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }
}

/// Minimal TOML emitter for the flat shape of a site configuration.
private struct TOMLWriter {
    private(set) var text = ""

    mutating func line(_ line: String) { text += line + "\n" }
    mutating func comment(_ comment: String) { line("# " + comment) }

    mutating func section(_ name: String) {
        if !text.isEmpty { text += "\n" }
        line("[\(name)]")
    }

    mutating func string(_ key: String, _ value: String) { line("\(key) = \(tomlQuoted(value))") }
    mutating func integer(_ key: String, _ value: Int) { line("\(key) = \(value)") }
    mutating func strings(_ key: String, _ values: [String]) {
        line("\(key) = [" + values.map(tomlQuoted).joined(separator: ", ") + "]")
    }
}
