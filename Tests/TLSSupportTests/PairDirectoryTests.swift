import Foundation
import TLSSupport
import TandemConfig
import Testing

/// A fresh directory under the system temporary directory, removed afterwards.
struct ScratchDirectory: ~Copyable {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("tandem-pair-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

func permissions(_ path: String) throws -> Int {
    let attributes = try FileManager.default.attributesOfItem(atPath: path)
    return (attributes[.posixPermissions] as? NSNumber)?.intValue ?? -1
}

extension PairDirectory {
    /// The pair directory as `tandem pair init` creates it, with the starting configurations.
    @discardableResult
    static func create(pair: String, sites: [String], at directory: String) throws(PairSetupError) -> PairLayout {
        try create(pair: pair, sites: sites, at: directory) { site, peer, dials in
            StartingConfig.text(pair: pair, site: site, peer: peer, dials: dials)
        }
    }
}

@Suite("pair directory: init and rotate")
struct PairDirectoryTests {
    static let environment = ["TANDEM_DB_PASSWORD": "not-a-real-password"]

    @Test func createsTheLayoutWithPrivateKeys() throws {
        let scratch = try ScratchDirectory()
        let layout = try PairDirectory.create(pair: "acme-dr", sites: ["idc", "cloud"], at: scratch.path + "/pair")
        #expect(layout.sites() == ["cloud", "idc"])
        #expect(try permissions(layout.directory) == 0o700)
        #expect(try permissions(layout.caKey) == 0o600)
        #expect(try permissions(layout.caCertificate) == 0o644)
        let authority = try PairAuthority(certificateFile: layout.caCertificate, keyFile: layout.caKey)
        #expect(authority.certificate.subjectCommonName == "Tandem pair acme-dr CA")
        for site in ["idc", "cloud"] {
            #expect(try permissions(layout.siteDirectory(site)) == 0o700)
            #expect(try permissions(layout.siteKey(site)) == 0o600)
            #expect(try permissions(layout.siteCertificate(site)) == 0o644)
            let certificate = try Certificate(file: layout.siteCertificate(site))
            #expect(certificate.dnsNames == [site])
            #expect(certificate.matches(try PrivateKey(file: layout.siteKey(site))))
            try authority.verify(certificate, site: site)
            // The site's copy of the CA is the CA.
            #expect(try String(contentsOfFile: layout.siteCA(site), encoding: .utf8) == authority.certificate.pem)
        }
        // Nothing is left behind next to the pair directory (the staging directory was renamed).
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path) == ["pair"])
    }

    @Test func startingConfigsParseAndPointAtTheFiles() throws {
        let scratch = try ScratchDirectory()
        let layout = try PairDirectory.create(pair: "acme-dr", sites: ["idc", "cloud"], at: scratch.path + "/pair")
        let idcFile = layout.siteConfig("idc")
        let idc = try SiteConfig.parse(
            String(contentsOfFile: idcFile, encoding: .utf8), file: idcFile, environment: Self.environment)
        #expect(idc.site == SiteSection(name: "idc", pair: "acme-dr"))
        #expect(idc.link.mode == .connect(host: "cloud.change-me.invalid", port: 7400))
        #expect(idc.link.peerSite == "cloud")
        #expect(idc.link.caFile == layout.siteCA("idc"))
        #expect(idc.link.certificateFile == layout.siteCertificate("idc"))
        #expect(idc.link.keyFile == layout.siteKey("idc"))
        #expect(idc.database.passwordSource == .environment(variable: "TANDEM_DB_PASSWORD"))

        let cloudFile = layout.siteConfig("cloud")
        let cloud = try SiteConfig.parse(
            String(contentsOfFile: cloudFile, encoding: .utf8), file: cloudFile, environment: Self.environment)
        #expect(cloud.site == SiteSection(name: "cloud", pair: "acme-dr"))
        #expect(cloud.link.mode == .listen(host: "0.0.0.0", port: 7400))
        #expect(cloud.link.peerSite == "idc")
        #expect(cloud.link.certificateFile == layout.siteCertificate("cloud"))

        // Placeholders are marked, and no secret is in the file.
        let text = try String(contentsOfFile: idcFile, encoding: .utf8)
        #expect(text.contains("PLACEHOLDER"))
        #expect(!text.contains("password ="))
    }

    @Test(
        "starting configs parse for unusual but valid names",
        arguments: [("a", "b"), ("dc_1.eu", "9dr"), ("primary-site", "dr-site")])
    func startingConfigsParseForOtherNames(names: (String, String)) throws {
        for (site, peer, dials) in [(names.0, names.1, true), (names.1, names.0, false)] {
            let text = StartingConfig.text(pair: "p", site: site, peer: peer, dials: dials)
            let config = try SiteConfig.parse(text, file: "/etc/tandem/\(site).toml", environment: Self.environment)
            #expect(config.site.name == site)
            #expect(config.link.peerSite == peer)
        }
    }

    @Test func tlsContextsLoadTheGeneratedFiles() throws {
        let scratch = try ScratchDirectory()
        let layout = try PairDirectory.create(pair: "acme-dr", sites: ["idc", "cloud"], at: scratch.path + "/pair")
        for site in ["idc", "cloud"] {
            for role in [TLSRole.client, .server] {
                let context = try TLSContext(
                    role: role, caFile: layout.siteCA(site), certificateFile: layout.siteCertificate(site),
                    keyFile: layout.siteKey(site))
                #expect(context.minimumProtocolVersion == TLSContext.tls13Version)
            }
        }
        // The key of one site does not load with the certificate of the other.
        #expect(throws: OpenSSLError.self) {
            try TLSContext(
                role: .client, caFile: layout.caCertificate, certificateFile: layout.siteCertificate("idc"),
                keyFile: layout.siteKey("cloud"))
        }
    }

    @Test func refusesToOverwriteAPairDirectory() throws {
        let scratch = try ScratchDirectory()
        let directory = scratch.path + "/pair"
        let layout = try PairDirectory.create(pair: "acme-dr", sites: ["idc", "cloud"], at: directory)
        let caBefore = try String(contentsOfFile: layout.caCertificate, encoding: .utf8)
        let keyBefore = try String(contentsOfFile: layout.caKey, encoding: .utf8)
        let error = try #require(throws: PairSetupError.self) {
            try PairDirectory.create(pair: "acme-dr", sites: ["idc", "cloud"], at: directory)
        }
        #expect(error.description.contains("already exists"))
        #expect(error.description.contains(directory))
        #expect(error.hint.contains("pair rotate"))
        #expect(try String(contentsOfFile: layout.caCertificate, encoding: .utf8) == caBefore)
        #expect(try String(contentsOfFile: layout.caKey, encoding: .utf8) == keyBefore)

        // Any non-empty directory, and a plain file, are refused too.
        let other = scratch.path + "/other"
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: false)
        try "notes".write(toFile: other + "/notes.txt", atomically: false, encoding: .utf8)
        #expect(throws: PairSetupError.self) { try PairDirectory.create(pair: "p", sites: ["a", "b"], at: other) }
        try "x".write(toFile: scratch.path + "/file", atomically: false, encoding: .utf8)
        #expect(throws: PairSetupError.self) {
            try PairDirectory.create(pair: "p", sites: ["a", "b"], at: scratch.path + "/file")
        }

        // An empty directory (made ahead, e.g. on a mounted volume) is used.
        let empty = scratch.path + "/empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: false)
        try PairDirectory.create(pair: "p", sites: ["a", "b"], at: empty)
        #expect(PairLayout(directory: empty).sites() == ["a", "b"])
    }

    @Test(
        "bad arguments are refused and create nothing",
        arguments: [
            ("acme", ["idc"]), ("acme", ["idc", "cloud", "third"]), ("acme", ["idc", "idc"]), ("acme", ["idc", ""]),
            ("acme", ["idc", "../cloud"]), ("ac me", ["idc", "cloud"]), ("", ["idc", "cloud"]),
        ])
    func badArgumentsAreRefused(pair: String, sites: [String]) throws {
        let scratch = try ScratchDirectory()
        let error = try #require(throws: PairSetupError.self) {
            try PairDirectory.create(pair: pair, sites: sites, at: scratch.path + "/pair")
        }
        #expect(!error.hint.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: scratch.path + "/pair"))
    }

    @Test func rotateIssuesANewCertificateAndKeepsTheOldOne() throws {
        let scratch = try ScratchDirectory()
        let layout = try PairDirectory.create(pair: "acme-dr", sites: ["idc", "cloud"], at: scratch.path + "/pair")
        let before = try Certificate(file: layout.siteCertificate("cloud"))
        let idcBefore = try String(contentsOfFile: layout.siteCertificate("idc"), encoding: .utf8)
        let (previous, current) = try PairDirectory.rotate(site: "cloud", in: layout.directory)
        #expect(previous?.serialNumberHex == before.serialNumberHex)
        #expect(current.serialNumberHex != before.serialNumberHex)
        let installed = try Certificate(file: layout.siteCertificate("cloud"))
        #expect(installed.serialNumberHex == current.serialNumberHex)
        #expect(installed.matches(try PrivateKey(file: layout.siteKey("cloud"))))
        let old = try Certificate(file: layout.siteCertificate("cloud") + ".old")
        #expect(old.serialNumberHex == before.serialNumberHex)
        #expect(old.matches(try PrivateKey(file: layout.siteKey("cloud") + ".old")))
        #expect(try permissions(layout.siteKey("cloud")) == 0o600)
        #expect(try permissions(layout.siteKey("cloud") + ".old") == 0o600)
        let authority = try PairAuthority(certificateFile: layout.caCertificate, keyFile: layout.caKey)
        try authority.verify(installed, site: "cloud")
        // The other site is untouched.
        #expect(try String(contentsOfFile: layout.siteCertificate("idc"), encoding: .utf8) == idcBefore)
        // Rotating again replaces the .old files with the certificate just retired.
        let (again, _) = try PairDirectory.rotate(site: "cloud", in: layout.directory)
        #expect(again?.serialNumberHex == current.serialNumberHex)
        #expect(
            try Certificate(file: layout.siteCertificate("cloud") + ".old").serialNumberHex == current.serialNumberHex)
    }

    @Test func rotateRefusesUnknownSitesAndMissingCA() throws {
        let scratch = try ScratchDirectory()
        let layout = try PairDirectory.create(pair: "acme-dr", sites: ["idc", "cloud"], at: scratch.path + "/pair")
        let unknown = try #require(throws: PairSetupError.self) {
            try PairDirectory.rotate(site: "mars", in: layout.directory)
        }
        #expect(unknown.description.contains("mars"))
        #expect(unknown.description.contains("cloud, idc"))
        #expect(throws: PairSetupError.self) { try PairDirectory.rotate(site: "idc", in: scratch.path + "/nope") }
        // A site's own directory has no CA key: rotation must happen where the pair directory is kept.
        let noCA = try #require(throws: PairSetupError.self) {
            try PairDirectory.rotate(site: "idc", in: layout.siteDirectory("idc"))
        }
        #expect(noCA.description.contains("no pair CA"))
    }
}
