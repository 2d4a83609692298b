import Testing

@testable import TandemConfig

/// One malformed configuration and what its error must say.
struct BadCase: CustomTestStringConvertible, Sendable {
    let name: String
    let text: String
    let key: String?
    let problem: String
    var hint: String? = nil

    var testDescription: String { name }

    static func valid(
        _ name: String, _ edit: (ConfigText) -> ConfigText, key: String?, _ problem: String,
        hint: String? = nil
    ) -> BadCase {
        BadCase(name: name, text: edit(.valid).text, key: key, problem: problem, hint: hint)
    }

    static func mariadb(
        _ name: String, _ edit: (ConfigText) -> ConfigText, key: String?, _ problem: String,
        hint: String? = nil
    ) -> BadCase {
        BadCase(name: name, text: edit(.minimalMariaDB).text, key: key, problem: problem, hint: hint)
    }
}

let badCases: [BadCase] = [
    // Structure
    .valid(
        "unknown section", { $0.setting("datbase", "x", "1") }, key: "datbase",
        "unknown section [datbase]", hint: "Did you mean [database]?"),
    .valid(
        "unknown key with suggestion", { $0.setting("database", "pasword_file", #""/x""#) },
        key: "database.pasword_file", "unknown key database.pasword_file",
        hint: "Did you mean database.password_file?"),
    .valid(
        "unknown key, swapped letters", { $0.setting("batch", "max_dealy_ms", "10") },
        key: "batch.max_dealy_ms", "unknown key", hint: "batch.max_delay_ms"),
    .valid(
        "unknown key, truncated", { $0.setting("batch", "max_delay", "10") },
        key: "batch.max_delay", "unknown key", hint: "batch.max_delay_ms"),
    .valid(
        "unknown key without a near match", { $0.setting("log", "colour", #""red""#) },
        key: "log.colour", "unknown key log.colour", hint: "Known keys in [log] are: level, format."),
    // [log] format, [control], [metrics], [alerts]
    .valid(
        "log format not text or json", { $0.setting("log", "format", #""xml""#) }, key: "log.format", "xml"),
    .valid(
        "control socket path too long for a UNIX socket",
        { $0.setting("control", "socket", "\"/run/\(String(repeating: "s", count: 110))\"") }, key: "control.socket",
        "a UNIX socket path holds at most 107", hint: "shorter path"),
    .valid(
        "control group with a space", { $0.setting("control", "monitor_group", #""tandem monitors""#) },
        key: "control.monitor_group", "is not a group name", hint: "system group name"),
    .valid(
        "metrics listen without a port", { $0.setting("metrics", "listen", #""127.0.0.1""#) },
        key: "metrics.listen", "expected host:port", hint: "omit listen"),
    .valid(
        "alert threshold of zero", { $0.setting("alerts", "rpo_warn_seconds", "0") },
        key: "alerts.rpo_warn_seconds", "seconds"),
    .valid(
        "password in the file", { $0.setting("database", "password", #""hunter2""#) },
        key: "database.password", "secrets must not be written in the configuration file",
        hint: "password_file"),
    .valid("missing section", { $0.removing("spool") }, key: "spool", "missing required section [spool]"),
    // Types and presence
    .valid(
        "wrong type: quoted port", { $0.setting("database", "port", #""5432""#) }, key: "database.port",
        #"expected an integer, got a string ("5432")"#, hint: "Write numbers without quotes: port = 5432."),
    .valid(
        "wrong type: float port", { $0.setting("database", "port", "5432.0") }, key: "database.port",
        "expected an integer, got a floating-point number"),
    .valid(
        "wrong type: unquoted string", { $0.setting("site", "name", "42") }, key: "site.name",
        "expected a string, got an integer (42)"),
    .valid(
        "wrong type: date", { $0.setting("database", "user", "1979-05-27") }, key: "database.user",
        "expected a string, got a date"),
    .valid(
        "wrong type: include as string", { $0.setting("tables", "include", #""public.*""#) },
        key: "tables.include", "expected an array of strings, got a string"),
    .valid(
        "wrong type: include entry", { $0.setting("tables", "include", #"["public.*", 7]"#) },
        key: "tables.include", "entry 2 is an integer"),
    .valid(
        "empty string", { $0.setting("database", "user", #""""#) }, key: "database.user",
        "expected a non-empty string"),
    .valid("missing site name", { $0.removing("site", "name") }, key: "site.name", "missing required key site.name"),
    .valid(
        "missing engine", { $0.removing("database", "engine") }, key: "database.engine",
        "missing required key database.engine"),
    .valid("missing host", { $0.removing("database", "host") }, key: "database.host", "missing required key"),
    .valid(
        "missing PostgreSQL database", { $0.removing("database", "database") }, key: "database.database",
        "missing required key"),
    .valid("missing link.mode", { $0.removing("link", "mode") }, key: "link.mode", "missing required key"),
    .valid(
        "missing peer in connect mode", { $0.removing("link", "peer") }, key: "link.peer",
        "missing required key link.peer"),
    .valid(
        "missing certificate", { $0.removing("link", "certificate") }, key: "link.certificate",
        "missing required key"),
    .valid(
        "missing spool directory", { $0.removing("spool", "directory") }, key: "spool.directory",
        "missing required key"),
    // Enumerations
    .valid(
        "bad link mode", { $0.setting("link", "mode", #""dial""#) }, key: "link.mode",
        #"expected "connect" or "listen", got "dial""#),
    .valid(
        "bad engine, near miss", { $0.setting("database", "engine", #""postgres""#) }, key: "database.engine",
        #"expected "postgresql", "mariadb" or "mysql", got "postgres""#, hint: #"Did you mean "postgresql"?"#),
    .valid(
        "bad sslmode", { $0.setting("database", "sslmode", #""verify_full""#) }, key: "database.sslmode",
        "got \"verify_full\"", hint: #""verify-full""#),
    .valid(
        "bad log level", { $0.setting("log", "level", #""verbose""#) }, key: "log.level",
        #"expected "trace", "debug", "info", "notice", "warning", "error" or "critical", got "verbose""#),
    // Ports and addresses
    .valid(
        "database port too large", { $0.setting("database", "port", "70000") }, key: "database.port",
        "expected a port number between 1 and 65535, got 70000"),
    .valid("database port zero", { $0.setting("database", "port", "0") }, key: "database.port", "got 0"),
    .valid(
        "peer without port", { $0.setting("link", "peer", #""dr.example.net""#) }, key: "link.peer",
        #"expected host:port such as "dr.example.net:7400", got "dr.example.net": there is no :port"#),
    .valid(
        "peer port out of range", { $0.setting("link", "peer", #""dr.example.net:99999""#) },
        key: "link.peer", "port 99999 is out of range 1–65535"),
    .valid(
        "peer port not a number", { $0.setting("link", "peer", #""dr.example.net:http""#) },
        key: "link.peer", #"port "http" is not a number"#),
    .valid(
        "peer with empty host", { $0.setting("link", "peer", #"":7400""#) }, key: "link.peer",
        "the host is empty"),
    .valid(
        "peer with bad host", { $0.setting("link", "peer", #""dr example:7400""#) }, key: "link.peer",
        "is not a valid host name or address"),
    .valid(
        "peer IPv6 without brackets", { $0.setting("link", "peer", #""2001:db8::1:7400""#) },
        key: "link.peer", "must be written in brackets"),
    .valid(
        "peer IPv6 unclosed bracket", { $0.setting("link", "peer", #""[2001:db8::1:7400""#) },
        key: "link.peer", "is not closed"),
    .mariadb(
        "listen address malformed", { $0.setting("link", "listen", #""7400""#) }, key: "link.listen",
        "expected host:port"),
    .valid(
        "listen key in connect mode", { $0.setting("link", "listen", #""0.0.0.0:7400""#) },
        key: "link.listen", #"only used with mode = "listen", but link.mode is "connect""#),
    .mariadb(
        "peer key in listen mode", { $0.setting("link", "peer", #""idc.example.net:7400""#) },
        key: "link.peer", #"only used with mode = "connect""#),
    .valid(
        "database host with port", { $0.setting("database", "host", #""db1:5432""#) }, key: "database.host",
        "expected a host name or address", hint: "port = 5432"),
    // Names
    .valid(
        "site name with space", { $0.setting("site", "name", #""idc site""#) }, key: "site.name",
        #"expected 1–63 letters, digits, "-", "_" or ".", got "idc site""#),
    .valid(
        "site name too long", { $0.setting("site", "name", "\"\(String(repeating: "a", count: 64))\"") },
        key: "site.name", "(64 characters)"),
    .valid(
        "site name leading dash", { $0.setting("site", "name", #""-idc""#) }, key: "site.name",
        "must start with a letter or digit"),
    .valid(
        "pair with slash", { $0.setting("site", "pair", #""acme/dr""#) }, key: "site.pair", "expected 1–63",
        hint: #"such as "acme-dr""#),
    .valid(
        "peer_site non-ASCII", { $0.setting("link", "peer_site", #""clöud""#) }, key: "link.peer_site",
        "expected 1–63"),
    .valid(
        "peer_site equals site name", { $0.setting("link", "peer_site", #""idc""#) }, key: "link.peer_site",
        #"must name the other site, but equals site.name ("idc")"#),
    // Secrets
    .valid(
        "both password sources", { $0.setting("database", "password_file", #""db.password""#) },
        key: "database.password_env", "set only one of password_file and password_env"),
    .valid(
        "password_env holding a value", { $0.setting("database", "password_env", #""hunter 2""#) },
        key: "database.password_env", "expected an environment variable name"),
    // Sizes and tuning ranges
    .valid(
        "size with unknown unit", { $0.setting("spool", "max_bytes", #""50 gigs""#) }, key: "spool.max_bytes",
        #"got "50 gigs": unknown unit "gigs""#),
    .valid(
        "fractional size", { $0.setting("spool", "max_bytes", #""1.5GiB""#) }, key: "spool.max_bytes",
        "fractions are not accepted"),
    .valid(
        "size without number", { $0.setting("spool", "max_bytes", #""GiB""#) }, key: "spool.max_bytes",
        "does not start with a whole number"),
    .valid(
        "size overflowing", { $0.setting("spool", "max_bytes", #""99999999999TiB""#) }, key: "spool.max_bytes",
        "does not fit"),
    .valid(
        "zero size", { $0.setting("spool", "max_bytes", "0") }, key: "spool.max_bytes",
        "expected a positive size, got 0"),
    .valid(
        "size as boolean", { $0.setting("spool", "max_bytes", "true") }, key: "spool.max_bytes",
        "got a boolean (true)"),
    .valid(
        "batch size too large", { $0.setting("batch", "max_bytes", #""1GiB""#) }, key: "batch.max_bytes",
        "expected a size between 4KiB and 64MiB, got 1GiB"),
    .valid(
        "spool smaller than a batch", { $0.setting("spool", "max_bytes", #""1MiB""#) }, key: "spool.max_bytes",
        "1MiB is smaller than one batch (batch.max_bytes = 4MiB)"),
    .valid(
        "compression level too high", { $0.setting("batch", "compression_level", "20") },
        key: "batch.compression_level", "expected a zstd level between 1 and 19, got 20"),
    .valid(
        "negative delay", { $0.setting("batch", "max_delay_ms", "-1") }, key: "batch.max_delay_ms",
        "expected milliseconds between 0 and 10000, got -1"),
    // Table patterns
    .valid(
        "include pattern without dot", { $0.setting("tables", "include", #"["public"]"#) },
        key: "tables.include", #"entry 1, "public", is not a schema.table pattern: it has no dot"#),
    .valid(
        "include pattern with two dots", { $0.setting("tables", "include", #"["db.public.t"]"#) },
        key: "tables.include", "more than one dot"),
    .valid(
        "include pattern with empty table", { $0.setting("tables", "include", #"["public."]"#) },
        key: "tables.include", "the table part is empty"),
    .valid(
        "exclude pattern with ?", { $0.setting("tables", "exclude", #"["public.t?"]"#) },
        key: "tables.exclude", #""?" is not supported; * is the only wildcard"#),
    .valid(
        "exclude pattern with space", { $0.setting("tables", "exclude", #"["public.my table"]"#) },
        key: "tables.exclude", "whitespace"),
    .valid(
        "exclude pattern with quotes", { $0.setting("tables", "exclude", #"["\"Public\".t"]"#) },
        key: "tables.exclude", "contains a quote"),
    .valid(
        "empty include", { $0.setting("tables", "include", "[]") }, key: "tables.include",
        "is empty, which would replicate no table at all"),
    // Engine-specific keys
    .mariadb(
        "MariaDB without server_id", { $0.removing("database", "server_id") }, key: "database.server_id",
        "missing required key database.server_id (a replica server id between 1 and 4294967295"),
    .mariadb(
        "server_id zero", { $0.setting("database", "server_id", "0") }, key: "database.server_id",
        "between 1 and 4294967295, got 0"),
    .mariadb(
        "server_id too large", { $0.setting("database", "server_id", "4294967296") },
        key: "database.server_id", "got 4294967296"),
    .mariadb(
        "PostgreSQL-only key with MariaDB", { $0.setting("database", "sslmode", #""require""#) },
        key: "database.sslmode", #"only applies to engine "postgresql", but database.engine is "mariadb""#),
    .mariadb(
        "application_name with MariaDB", { $0.setting("database", "application_name", #""x""#) },
        key: "database.application_name", "only applies to engine \"postgresql\""),
    .valid(
        "MariaDB-only key with PostgreSQL", { $0.setting("database", "server_id", "4242") },
        key: "database.server_id", #"only applies to engine "mariadb" or "mysql", but database.engine is "postgresql""#),
    .valid(
        "unix_socket with PostgreSQL", { $0.setting("database", "unix_socket", #""/tmp/s""#) },
        key: "database.unix_socket", "only applies to engine \"mariadb\" or \"mysql\""),
    .mariadb(
        "unix_socket and host", { $0.setting("database", "unix_socket", #""/run/mysqld/mysqld.sock""#) },
        key: "database.unix_socket", "set either host or unix_socket, not both"),
    .mariadb(
        "relative unix_socket",
        { $0.removing("database", "host").setting("database", "unix_socket", #""mysqld.sock""#) },
        key: "database.unix_socket", "expected an absolute path"),
    .mariadb(
        "port with unix_socket",
        {
            $0.removing("database", "host").setting("database", "unix_socket", #""/run/m.sock""#)
                .setting("database", "port", "3307")
        },
        key: "database.port", "has no effect when unix_socket is set"),
    .mariadb(
        "socket path as MariaDB host", { $0.setting("database", "host", #""/run/mysqld""#) },
        key: "database.host", "got the path", hint: "unix_socket"),
    .valid(
        "application_name too long",
        { $0.setting("database", "application_name", "\"\(String(repeating: "x", count: 64))\"") },
        key: "database.application_name", "expected at most 63 printable ASCII characters"),
    // Paths
    .valid(
        "tilde path", { $0.setting("link", "key", #""~/idc.key""#) }, key: "link.key",
        "starts with ~, which is not expanded"),
]

@Suite struct ValidationErrorTests {
    @Test(arguments: badCases)
    func reportsKeyAndProblem(_ bad: BadCase) throws {
        let error = try #require(parseError(bad.text), "expected \(bad.name) to be rejected")
        #expect(error.key == bad.key)
        #expect(error.problem.contains(bad.problem), "problem was: \(error.problem)")
        if let hint = bad.hint {
            #expect(error.hint.contains(hint), "hint was: \(error.hint)")
        }
        #expect(!error.hint.isEmpty)
        #expect(error.file == siteFile)
        #expect(error.description.hasPrefix(siteFile + ": "))
        #expect(!error.description.contains("\n"))
    }

    @Test func descriptionHasTheDocumentedShape() throws {
        let text = ConfigText.valid.setting("link", "mode", #""dial""#).text
        let error = try #require(parseError(text, file: "site.toml"))
        #expect(error.description == #"site.toml: link.mode: expected "connect" or "listen", got "dial""#)
        #expect(error.descriptionWithHint == error.description + "\n" + error.hint)
    }

    @Test func syntaxErrorCarriesLineAndColumn() throws {
        let text = "[site]\nname = \"idc\"\npair = acme-dr\n"
        let error = try #require(parseError(text))
        #expect(error.key == nil)
        #expect(error.line == 3)
        #expect(error.column != nil)
        #expect(error.problem.hasPrefix("invalid TOML: "))
        #expect(error.description.hasPrefix("\(siteFile): line 3, column "))
    }

    @Test func duplicateKeyIsASyntaxError() throws {
        let error = try #require(parseError("[site]\nname = \"a\"\nname = \"b\"\n"))
        #expect(error.line == 3)
        #expect(error.problem.hasPrefix("invalid TOML: "))
    }

    @Test func nulCharacterIsASyntaxError() throws {
        let error = try #require(parseError("[site]\nname = \"a\u{0}\"\n"))
        #expect(error.line == 2)
        #expect(error.column == 10)
    }

    @Test func topLevelKeyPointsToItsSection() throws {
        let error = try #require(parseError("name = \"idc\"\n" + ConfigText.valid.text))
        #expect(error.key == "name")
        #expect(error.problem == "unknown top-level key name")
        #expect(error.hint.contains("[site]"))
    }

    @Test func knownSectionWrittenAsValue() throws {
        let error = try #require(parseError("log = \"debug\"\n" + ConfigText.valid.removing("log").text))
        #expect(error.key == "log")
        #expect(error.problem.contains("expected a [log] section (a table), got a string"))
    }

    @Test func typoIsReportedBeforeMissingKey() throws {
        // `servr_id` must be reported as a typo, not as "server_id is missing".
        let text = ConfigText.minimalMariaDB.removing("database", "server_id")
            .setting("database", "servr_id", "7").text
        let error = try #require(parseError(text))
        #expect(error.key == "database.servr_id")
        #expect(error.hint == "Did you mean database.server_id?")
    }

    @Test func valuesWithNewlinesStayOnOneLine() throws {
        let text = ConfigText.valid.setting("link", "mode", #""dial\nnow""#).text
        let error = try #require(parseError(text))
        #expect(!error.description.contains("\n"))
        #expect(error.description.contains(#""dial\nnow""#))
    }

    @Test func longValuesAreShortened() throws {
        let long = String(repeating: "x", count: 500)
        let error = try #require(parseError(ConfigText.valid.setting("link", "mode", "\"\(long)\"").text))
        #expect(error.description.count < 200)
        #expect(error.description.contains("…"))
    }

    @Test func emptyFileNamesTheFirstMissingSection() throws {
        let error = try #require(parseError(""))
        #expect(error.key == "site")
        #expect(error.problem == "missing required section [site]")
    }
}
