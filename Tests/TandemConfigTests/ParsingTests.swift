import TandemCore
import Testing

@testable import TandemConfig

@Suite struct ParsingTests {
    @Test func fullConfigParsesToExpectedStruct() throws {
        let config = try SiteConfig.parse(ConfigText.valid.text, file: siteFile, environment: ConfigText.environment)
        let expected = SiteConfig(
            site: SiteSection(name: "idc", pair: "acme-dr"),
            database: DatabaseConfig(
                engine: .postgresql, host: "127.0.0.1", port: 5433, user: "tandem", database: "app",
                passwordSource: .environment(variable: "TEST_DB_PASSWORD"), password: Secret("s3cr3t-Hunter2!"),
                engineSettings: .postgresql(PostgreSQLSettings(sslMode: .require, applicationName: "tandem-idc"))),
            link: LinkConfig(
                mode: .connect(host: "dr.example.net", port: 7400), peerSite: "cloud",
                caFile: "/etc/tandem/pair-ca.pem", certificateFile: "/etc/tandem/idc.pem",
                keyFile: "/etc/tandem/keys/idc.key"),
            tables: TableSelection(
                include: [TablePattern("public.*")!, TablePattern("billing.invoice_*")!],
                exclude: [TablePattern("public.audit_*")!]),
            spool: SpoolConfig(directory: "/var/lib/tandem/spool", maxBytes: .gibibytes(50)),
            batch: BatchConfig(maxBytes: .mebibytes(4), maxDelay: .milliseconds(20), compressionLevel: 3),
            log: LogConfig(level: .debug))
        #expect(config == expected)
    }

    @Test("[control], [metrics], [alerts] and [log] format: defaults, explicit values, rendered back")
    func operatorSections() throws {
        let defaults = try SiteConfig.parse(ConfigText.minimalMariaDB.text, file: "/srv/dr/site.toml", environment: [:])
        #expect(defaults.control == .defaults(spoolDirectory: defaults.spool.directory))
        #expect(defaults.control.socket == defaults.spool.directory + "/control.sock")
        #expect(
            defaults.control.monitorGroup == "tandem-monitor" && defaults.control.operatorGroup == "tandem-operator")
        #expect(defaults.metrics.listen == nil)
        #expect(defaults.alerts == AlertsConfig())
        #expect(defaults.log.format == .text)
        let text = ConfigText.minimalMariaDB
            .setting("control", "socket", #""run/dr.sock""#).setting("control", "operator_group", #""dba""#)
            .setting("control", "audit_log", #""/var/log/tandem/audit.log""#)
            .setting("metrics", "listen", #""127.0.0.1:9464""#).setting("alerts", "rpo_warn_seconds", "5")
            .setting("alerts", "apply_lag_warn_seconds", "60").setting("log", "format", #""json""#)
        let config = try SiteConfig.parse(text.text, file: "/srv/dr/site.toml", environment: [:])
        #expect(config.control.socket == "/srv/dr/run/dr.sock")
        #expect(config.control.operatorGroup == "dba" && config.control.monitorGroup == "tandem-monitor")
        #expect(config.control.auditLog == "/var/log/tandem/audit.log")
        #expect(config.metrics.listen?.host == "127.0.0.1" && config.metrics.listen?.port == 9464)
        #expect(config.alerts == AlertsConfig(rpoWarn: .seconds(5), applyLagWarn: .seconds(60)))
        #expect(config.log.format == .json)
        let rendered = config.renderedForDisplay()
        let again = try SiteConfig.parse(rendered, file: "/srv/dr/site.toml", environment: [:])
        #expect(again.control == config.control && again.metrics == config.metrics && again.alerts == config.alerts)
        #expect(again.log == config.log)
    }

    @Test func defaultsFillInForOmittedKeys() throws {
        let config = try SiteConfig.parse(ConfigText.minimalMariaDB.text, file: "/srv/dr/site.toml", environment: [:])
        #expect(config.database.engine == .mariadb)
        #expect(config.database.port == 3306)
        #expect(config.database.database == nil)
        #expect(config.database.password == nil)
        #expect(config.database.passwordSource == nil)
        #expect(config.database.engineSettings == .binlog(BinlogSettings(serverID: 4242, unixSocket: nil)))
        #expect(config.link.mode == .listen(host: "::", port: 7400))
        #expect(config.link.mode.address == "[::]:7400")
        #expect(config.tables == .all)
        #expect(config.tables.includes(schema: "anything", table: "at_all"))
        #expect(config.spool == SpoolConfig(directory: "/srv/dr/spool", maxBytes: nil))
        #expect(config.batch == BatchConfig())
        #expect(config.batch.maxBytes == .mebibytes(8))
        #expect(config.batch.maxDelay == .milliseconds(50))
        #expect(config.batch.compressionLevel == 1)
        #expect(config.log.level == .info)
    }

    @Test func postgreSQLDefaults() throws {
        let text = ConfigText.valid.removing("database", "port").removing("database", "sslmode")
            .removing("database", "application_name").text
        let config = try SiteConfig.parse(text, file: siteFile, environment: ConfigText.environment)
        #expect(config.database.port == 5432)
        #expect(
            config.database.engineSettings.postgresql == PostgreSQLSettings(sslMode: .prefer, applicationName: "tandem")
        )
        #expect(config.database.engineSettings.binlog == nil)
    }

    @Test func mysqlUsesBinlogSettingsAndUnixSocket() throws {
        let text = ConfigText.minimalMariaDB.setting("database", "engine", #""mysql""#)
            .removing("database", "host").setting("database", "unix_socket", #""/run/mysqld/mysqld.sock""#).text
        let config = try SiteConfig.parse(text, file: siteFile, environment: [:])
        #expect(config.database.engine == .mysql)
        #expect(config.database.host == nil)
        #expect(config.database.engineSettings.binlog?.unixSocket == "/run/mysqld/mysqld.sock")
    }

    @Test func serverIDAcceptsFullUnsignedRange() throws {
        let text = ConfigText.minimalMariaDB.setting("database", "server_id", "4294967295").text
        let config = try SiteConfig.parse(text, file: siteFile, environment: [:])
        #expect(config.database.engineSettings.binlog?.serverID == UInt32.max)
    }

    @Test func postgreSQLHostMayBeSocketDirectory() throws {
        let text = ConfigText.valid.setting("database", "host", #""/var/run/postgresql""#).text
        let config = try SiteConfig.parse(text, file: siteFile, environment: ConfigText.environment)
        #expect(config.database.host == "/var/run/postgresql")
    }

    @Test func sizesAcceptIntegersAndUnits() throws {
        let text = ConfigText.valid.setting("spool", "max_bytes", "1073741824")
            .setting("batch", "max_bytes", #""500 kB""#).text
        let config = try SiteConfig.parse(text, file: siteFile, environment: ConfigText.environment)
        #expect(config.spool.maxBytes == .gibibytes(1))
        #expect(config.batch.maxBytes == ByteSize(bytes: 500_000))
    }

    @Test(arguments: [
        ("peer", #""10.1.2.3:7400""#, LinkMode.connect(host: "10.1.2.3", port: 7400)),
        ("peer", #""[2001:db8::7]:443""#, LinkMode.connect(host: "2001:db8::7", port: 443)),
        ("peer", #""dr_site.example.net:1""#, LinkMode.connect(host: "dr_site.example.net", port: 1)),
    ])
    func connectAddresses(key: String, value: String, expected: LinkMode) throws {
        let text = ConfigText.valid.setting("link", key, value).text
        let config = try SiteConfig.parse(text, file: siteFile, environment: ConfigText.environment)
        #expect(config.link.mode == expected)
    }

    @Test func relativePathsResolveAgainstConfigDirectory() throws {
        let text = ConfigText.valid.setting("link", "ca", #""./certs/../ca.pem""#)
            .setting("spool", "directory", #""spool//data""#).text
        let config = try SiteConfig.parse(text, file: "/opt/tandem/conf/site.toml", environment: ConfigText.environment)
        #expect(config.link.caFile == "/opt/tandem/conf/certs/../ca.pem")
        #expect(config.link.certificateFile == "/opt/tandem/conf/idc.pem")
        #expect(config.link.keyFile == "/opt/tandem/conf/keys/idc.key")
        #expect(config.spool.directory == "/opt/tandem/conf/spool/data")
    }

    @Test func relativeConfigFileNameResolvesAgainstWorkingDirectory() throws {
        let config = try SiteConfig.parse(ConfigText.valid.text, file: "site.toml", environment: ConfigText.environment)
        #expect(config.link.certificateFile.hasPrefix("/"))
        #expect(config.link.certificateFile.hasSuffix("/idc.pem"))
    }

    @Test func renderedDisplayRoundTrips() throws {
        for (text, environment) in [
            (ConfigText.valid.text, ConfigText.environment), (ConfigText.minimalMariaDB.text, [:]),
        ] {
            let config = try SiteConfig.parse(text, file: siteFile, environment: environment)
            let rendered = config.renderedForDisplay()
            let withoutMaskedLine = rendered.split(separator: "\n", omittingEmptySubsequences: false)
                .filter { !$0.hasPrefix("password = ") }.joined(separator: "\n")
            let reparsed = try SiteConfig.parse(withoutMaskedLine, file: siteFile, environment: environment)
            #expect(reparsed == config)
        }
    }

    @Test func renderedDisplayShowsDefaults() throws {
        let config = try SiteConfig.parse(ConfigText.minimalMariaDB.text, file: "/srv/dr/site.toml", environment: [:])
        let rendered = config.renderedForDisplay()
        #expect(rendered.contains("port = 3306\n"))
        #expect(rendered.contains("server_id = 4242\n"))
        #expect(rendered.contains(#"include = ["*.*"]"#))
        #expect(rendered.contains(#"max_bytes = "8MiB""#))
        #expect(rendered.contains("max_delay_ms = 50\n"))
        #expect(rendered.contains("compression_level = 1\n"))
        #expect(rendered.contains(#"level = "info""#))
        #expect(rendered.contains(#"directory = "/srv/dr/spool""#))
        #expect(rendered.contains(#"listen = "[::]:7400""#))
        #expect(rendered.contains("# no password"))
    }

    @Test func renderedDisplayEscapesStrings() throws {
        var config = try SiteConfig.parse(ConfigText.minimalMariaDB.text, file: siteFile, environment: [:])
        config.spool.directory = "/tmp/odd \"dir\"\\x"
        #expect(config.renderedForDisplay().contains(#"directory = "/tmp/odd \"dir\"\\x""#))
    }
}
