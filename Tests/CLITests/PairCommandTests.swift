import Foundation
import Testing

/// `tandem pair init` / `pair rotate` through the built binary, as an operator
/// runs them.
@Suite("tandem pair")
struct PairCommandTests {
    final class Scratch {
        let url: URL
        init() throws {
            url = FileManager.default.temporaryDirectory.appendingPathComponent("tandem-pair-cli-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        }
        deinit { try? FileManager.default.removeItem(at: url) }
        func path(_ relative: String) -> String { url.appendingPathComponent(relative).path }
    }

    func mode(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    /// No PATH: proves that nothing shells out to the `openssl` command.
    static let bareEnvironment = ["PATH": "/nonexistent"]

    @Test func initCreatesTheCAsitesAndConfigsThatCheck() throws {
        let scratch = try Scratch()
        let out = scratch.path("acme")
        let run = try TandemRun.run(
            ["pair", "init", "--name", "acme-dr", "--sites", "idc,cloud", "--out", out],
            environment: Self.bareEnvironment)
        #expect(run.status == 0, "stderr: \(run.stderr)")
        #expect(run.stdout.contains("Created pair \"acme-dr\" in \(out)"))
        #expect(run.stdout.contains("idc/  for site idc (dials cloud)"))
        for file in [
            "ca.pem", "idc/idc.pem", "idc/ca.pem", "idc/idc.toml", "cloud/cloud.pem", "cloud/cloud.toml", "README.txt",
        ] {
            #expect(FileManager.default.fileExists(atPath: "\(out)/\(file)"), "missing \(file)")
        }
        for key in ["ca.key", "idc/idc.key", "cloud/cloud.key"] {
            #expect(try mode("\(out)/\(key)") == 0o600, "\(key) is not 0600")
        }
        var environment = ProcessInfo.processInfo.environment
        environment["TANDEM_DB_PASSWORD"] = "placeholder-password"
        let idc = try TandemRun.run(["config", "check", "--config", "\(out)/idc/idc.toml"], environment: environment)
        #expect(idc.status == 0, "stderr: \(idc.stderr)")
        #expect(idc.stdout.contains("mode = \"connect\""))
        #expect(idc.stdout.contains("peer_site = \"cloud\""))
        #expect(idc.stdout.contains("certificate = \"\(out)/idc/idc.pem\""))
        let cloud = try TandemRun.run(
            ["config", "check", "--config", "\(out)/cloud/cloud.toml"], environment: environment)
        #expect(cloud.status == 0, "stderr: \(cloud.stderr)")
        #expect(cloud.stdout.contains("mode = \"listen\""))
        #expect(cloud.stdout.contains("peer_site = \"idc\""))
    }

    @Test func initRefusesAnExistingPairDirectory() throws {
        let scratch = try Scratch()
        let out = scratch.path("acme")
        #expect(
            try TandemRun.run(["pair", "init", "--name", "acme", "--sites", "idc,cloud", "--out", out]).status == 0)
        let caBefore = try Data(contentsOf: URL(fileURLWithPath: "\(out)/ca.key"))
        let again = try TandemRun.run(["pair", "init", "--name", "acme", "--sites", "idc,cloud", "--out", out])
        #expect(again.status == 1)
        #expect(again.stdout.isEmpty)
        #expect(again.stderr.contains("tandem: error: \(out) already exists and is not empty; refusing to overwrite"))
        #expect(again.stderr.contains("hint: Choose a new --out directory"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(out)/ca.key")) == caBefore)
    }

    @Test(
        "init refuses bad arguments",
        arguments: [
            (["--name", "acme", "--sites", "idc"], "exactly two sites"),
            (["--name", "acme", "--sites", "idc,idc"], "different names"),
            (["--name", "acme", "--sites", "idc,cl oud"], "may only contain"),
            (["--name", "ac/me", "--sites", "idc,cloud"], "pair name"),
        ])
    func initRefusesBadArguments(arguments: [String], message: String) throws {
        let scratch = try Scratch()
        let out = scratch.path("acme")
        let run = try TandemRun.run(["pair", "init"] + arguments + ["--out", out])
        #expect(run.status == 1)
        #expect(run.stderr.contains(message), "stderr: \(run.stderr)")
        #expect(run.stderr.contains("hint:"))
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test func rotateIssuesANewCertificate() throws {
        let scratch = try Scratch()
        let out = scratch.path("acme")
        #expect(
            try TandemRun.run(["pair", "init", "--name", "acme", "--sites", "idc,cloud", "--out", out]).status == 0)
        let before = try String(contentsOfFile: "\(out)/cloud/cloud.pem", encoding: .utf8)
        let run = try TandemRun.run(
            ["pair", "rotate", "--dir", out, "--site", "cloud"], environment: Self.bareEnvironment)
        #expect(run.status == 0, "stderr: \(run.stderr)")
        #expect(run.stdout.contains("Issued a new certificate for site \"cloud\""))
        #expect(run.stdout.contains("kept as cloud.pem.old, cloud.key.old"))
        #expect(try String(contentsOfFile: "\(out)/cloud/cloud.pem.old", encoding: .utf8) == before)
        #expect(try String(contentsOfFile: "\(out)/cloud/cloud.pem", encoding: .utf8) != before)
        #expect(try mode("\(out)/cloud/cloud.key") == 0o600)
        #expect(try mode("\(out)/cloud/cloud.key.old") == 0o600)

        let unknown = try TandemRun.run(["pair", "rotate", "--dir", out, "--site", "mars"])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("has no site \"mars\" (sites: cloud, idc)"))
        #expect(unknown.stderr.contains("hint:"))
    }
}
