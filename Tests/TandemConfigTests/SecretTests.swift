import Foundation
import Testing

@testable import TandemConfig

@Suite struct SecretTests {
    static let password = "s3cr3t-Hunter2!"

    @Test func secretNeverPrintsItsValue() {
        let secret = Secret(Self.password)
        var dumped = ""
        dump(secret, to: &dumped)
        for text in [
            secret.description, secret.debugDescription, "\(secret)", String(describing: secret),
            String(reflecting: secret), dumped, "\(Mirror(reflecting: secret).children.map { "\($0)" })",
        ] {
            #expect(!text.contains(Self.password), "leaked in: \(text)")
        }
        #expect(secret.description == "********")
        #expect(String(reflecting: secret) == "********")
        #expect(Mirror(reflecting: secret).children.isEmpty)
        #expect(secret.reveal() == Self.password)
    }

    @Test func configNeverPrintsThePassword() throws {
        let config = try SiteConfig.parse(ConfigText.valid.text, file: siteFile, environment: ConfigText.environment)
        #expect(config.database.password?.reveal() == Self.password)
        var dumped = ""
        dump(config, to: &dumped)
        let renderings = [
            config.renderedForDisplay(), String(describing: config), String(reflecting: config),
            "\(config.database)", String(reflecting: config.database), dumped,
        ]
        for text in renderings {
            #expect(!text.contains(Self.password), "leaked in: \(text)")
        }
        #expect(dumped.contains("********"))
        #expect(config.renderedForDisplay().contains(#"password = "********"  # read from $TEST_DB_PASSWORD"#))
    }

    @Test func errorsNeverContainThePassword() throws {
        // A password pasted into the wrong key must not be echoed back either.
        let text = ConfigText.valid.setting("database", "password", "\"\(Self.password)\"").text
        let error = try #require(parseError(text))
        #expect(!error.descriptionWithHint.contains(Self.password))
    }

    // MARK: password_file

    @Test func passwordFileRelativeToConfigDirectory() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try dir.write("conf/secrets/db.password", Self.password + "\n", permissions: 0o600)
        let text = ConfigText.valid.removing("database", "password_env")
            .setting("database", "password_file", #""secrets/db.password""#).text
        let config = try SiteConfig.parse(text, file: dir.path + "/conf/site.toml", environment: [:])
        #expect(config.database.password?.reveal() == Self.password)
        #expect(config.database.passwordSource == .file(path: dir.path + "/conf/secrets/db.password"))
        let rendered = config.renderedForDisplay()
        #expect(rendered.contains("password_file = \"\(dir.path)/conf/secrets/db.password\""))
        #expect(rendered.contains(#"password = "********"  # read from password_file"#))
        #expect(!rendered.contains(Self.password))
    }

    @Test func loadResolvesPasswordFileNextToConfig() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try dir.write("db.password", Self.password + "\r\n", permissions: 0o640)
        let text = ConfigText.valid.removing("database", "password_env")
            .setting("database", "password_file", #""db.password""#).text
        let configPath = try dir.write("site.toml", text, permissions: 0o644)
        let config = try SiteConfig.load(path: configPath, environment: [:])
        #expect(config.database.password == Secret(Self.password))
        #expect(config.link.certificateFile == dir.path + "/idc.pem")
    }

    @Test(arguments: [0o644, 0o604, 0o602, 0o666])
    func passwordFileAccessibleByOthersIsRejected(permissions: Int) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let path = try dir.write("db.password", Self.password, permissions: permissions)
        let text = ConfigText.valid.removing("database", "password_env")
            .setting("database", "password_file", tomlQuoted(path)).text
        let error = try #require(parseError(text, environment: [:]))
        #expect(error.key == "database.password_file")
        #expect(error.problem.contains("is accessible by other users (mode 0\(String(permissions, radix: 8)))"))
        #expect(error.hint.contains("chmod o-rwx \(path)"))
    }

    @Test(arguments: [0o600, 0o640, 0o400, 0o440, 0o660])
    func passwordFileReadableByOwnerOrGroupIsAccepted(permissions: Int) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let path = try dir.write("db.password", Self.password, permissions: permissions)
        let text = ConfigText.valid.removing("database", "password_env")
            .setting("database", "password_file", tomlQuoted(path)).text
        let config = try SiteConfig.parse(text, file: siteFile, environment: [:])
        #expect(config.database.password?.reveal() == Self.password)
    }

    @Test(arguments: [
        ("", "is empty"), ("\n\n", "is empty"), ("first\nsecond\n", "has more than one line"),
    ])
    func passwordFileContentIsChecked(contents: String, problem: String) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let path = try dir.write("db.password", contents)
        let text = ConfigText.valid.removing("database", "password_env")
            .setting("database", "password_file", tomlQuoted(path)).text
        let error = try #require(parseError(text, environment: [:]))
        #expect(error.key == "database.password_file")
        #expect(error.problem.contains(problem))
    }

    @Test func passwordKeepsInnerAndLeadingSpaces() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let path = try dir.write("db.password", "  pass word \n")
        let text = ConfigText.valid.removing("database", "password_env")
            .setting("database", "password_file", tomlQuoted(path)).text
        let config = try SiteConfig.parse(text, file: siteFile, environment: [:])
        #expect(config.database.password?.reveal() == "  pass word ")
    }

    @Test func missingPasswordFile() throws {
        let text = ConfigText.valid.removing("database", "password_env")
            .setting("database", "password_file", #""nonexistent/db.password""#).text
        let error = try #require(parseError(text, file: "/nonexistent-tandem/site.toml", environment: [:]))
        #expect(error.key == "database.password_file")
        #expect(error.problem == #"password file "/nonexistent-tandem/nonexistent/db.password" does not exist"#)
    }

    @Test func passwordFileThatIsADirectory() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let text = ConfigText.valid.removing("database", "password_env")
            .setting("database", "password_file", tomlQuoted(dir.path)).text
        let error = try #require(parseError(text, environment: [:]))
        #expect(error.key == "database.password_file")
        #expect(error.problem.contains("it is not a regular file"))
    }

    @Test func unreadablePasswordFileIsReported() {
        let resolver = PasswordResolver(
            context: ErrorContext(file: "site.toml"), environment: [:],
            readFile: { _ in .failure(.open(errno: EACCES)) })
        #expect(throws: ConfigError.self) { try resolver.resolve(.file(path: "/etc/tandem/db.password")) }
        do {
            _ = try resolver.resolve(.file(path: "/etc/tandem/db.password"))
        } catch {
            #expect(error.problem == #"cannot read password file "/etc/tandem/db.password": permission denied"#)
        }
    }

    // MARK: password_env

    @Test func passwordEnvMissingVariable() throws {
        let error = try #require(parseError(ConfigText.valid.text, environment: ["OTHER": "x"]))
        #expect(error.key == "database.password_env")
        #expect(error.problem == "environment variable TEST_DB_PASSWORD is not set")
        #expect(error.hint.contains("EnvironmentFile="))
    }

    @Test func passwordEnvEmptyVariable() throws {
        let error = try #require(parseError(ConfigText.valid.text, environment: ["TEST_DB_PASSWORD": ""]))
        #expect(error.key == "database.password_env")
        #expect(error.problem == "environment variable TEST_DB_PASSWORD is set but empty")
    }

    @Test func decodeDoesNoSecretIO() throws {
        // The pure stage leaves the password unresolved even for a missing file.
        let text = ConfigText.valid.removing("database", "password_env")
            .setting("database", "password_file", #""/nonexistent/db.password""#).text
        let config = try SiteConfig.decode(text, file: siteFile)
        #expect(config.database.passwordSource == .file(path: "/nonexistent/db.password"))
        #expect(config.database.password == nil)
    }
}
