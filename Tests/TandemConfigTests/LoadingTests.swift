import Foundation
import TandemCore
import Testing

@testable import TandemConfig

@Suite struct ExampleConfigTests {
    @Test func idcExampleLoads() throws {
        let example = try String(contentsOfFile: repositoryPath("appliance/config/idc.example.toml"), encoding: .utf8)
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let path = try dir.write("site.toml", example, permissions: 0o644)
        try dir.write("db.password", "example-password\n", permissions: 0o600)
        let config = try SiteConfig.load(path: path, environment: [:])
        #expect(config.site == SiteSection(name: "idc", pair: "acme-dr"))
        #expect(config.database.engine == .postgresql)
        #expect(config.database.passwordSource == .file(path: dir.path + "/db.password"))
        #expect(config.database.password?.reveal() == "example-password")
        #expect(config.link.mode == .connect(host: "dr.example.net", port: 7400))
        #expect(config.link.peerSite == "cloud")
        #expect(config.link.caFile == dir.path + "/pair-ca.pem")
        #expect(config.tables.includes(schema: "public", table: "orders"))
        #expect(!config.tables.includes(schema: "public", table: "audit_log"))
        #expect(config.spool.maxBytes == .gibibytes(50))
        #expect(config.batch.compressionLevel == 3)
    }

    @Test func cloudExampleParses() throws {
        let path = repositoryPath("appliance/config/cloud.example.toml")
        let config = try SiteConfig.load(path: path, environment: ["TANDEM_DB_PASSWORD": "from-env"])
        #expect(config.site.name == "cloud")
        #expect(config.database.port == 5432)
        #expect(config.database.password?.reveal() == "from-env")
        #expect(config.link.mode == .listen(host: "0.0.0.0", port: 7400))
        #expect(config.link.peerSite == "idc")
        #expect(config.tables == .all)
        #expect(config.batch == BatchConfig())
        #expect(config.log.level == .notice)
    }

    /// `tandem status` loads the configuration without the password: a monitor can read neither
    /// the password file nor the agent's environment.
    @Test func loadingWithoutThePasswordNeedsNeitherTheFileNorTheVariable() throws {
        let example = try String(contentsOfFile: repositoryPath("appliance/config/idc.example.toml"), encoding: .utf8)
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let path = try dir.write("site.toml", example, permissions: 0o644)
        #expect(throws: ConfigError.self) { _ = try SiteConfig.load(path: path, environment: [:]) }
        let config = try SiteConfig.load(path: path, environment: [:], readingPassword: false)
        #expect(config.database.password == nil)
        #expect(config.database.passwordSource == .file(path: dir.path + "/db.password"))
        #expect(config.control.socket == config.spool.directory + "/control.sock")
    }

    @Test func examplesDescribeTheSamePair() throws {
        let idc = try SiteConfig.decode(
            String(contentsOfFile: repositoryPath("appliance/config/idc.example.toml"), encoding: .utf8),
            file: siteFile)
        let cloud = try SiteConfig.decode(
            String(contentsOfFile: repositoryPath("appliance/config/cloud.example.toml"), encoding: .utf8),
            file: siteFile)
        #expect(idc.site.pair == cloud.site.pair)
        #expect(idc.link.peerSite == cloud.site.name)
        #expect(cloud.link.peerSite == idc.site.name)
        #expect(idc.database.engine == cloud.database.engine)
        #expect(idc.link.mode.port == cloud.link.mode.port)
    }
}

@Suite struct LoadingTests {
    @Test func missingFileIsNamed() throws {
        do {
            _ = try SiteConfig.load(path: "/nonexistent-tandem/site.toml", environment: [:])
            Issue.record("expected an error")
        } catch {
            #expect(error.file == "/nonexistent-tandem/site.toml")
            #expect(error.key == nil)
            #expect(
                error.description == "/nonexistent-tandem/site.toml: cannot read the configuration file: no such file")
            #expect(error.hint.contains("--config"))
        }
    }

    @Test func directoryIsNotAConfigFile() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        do {
            _ = try SiteConfig.load(path: dir.path, environment: [:])
            Issue.record("expected an error")
        } catch {
            #expect(error.problem == "cannot read the configuration file: it is not a regular file")
        }
    }

    @Test func invalidUTF8IsReported() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let path = dir.path + "/site.toml"
        try Data([0x5B, 0xFF, 0xFE, 0x5D]).write(to: URL(fileURLWithPath: path))
        do {
            _ = try SiteConfig.load(path: path, environment: [:])
            Issue.record("expected an error")
        } catch {
            #expect(error.problem == "the file is not valid UTF-8 text")
        }
    }

    @Test func loadErrorsNameTheFileAsGiven() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let path = try dir.write("site.toml", ConfigText.valid.setting("log", "level", #""loud""#).text)
        do {
            _ = try SiteConfig.load(path: path, environment: ConfigText.environment)
            Issue.record("expected an error")
        } catch {
            #expect(error.description.hasPrefix(path + ": log.level: "))
        }
    }
}
