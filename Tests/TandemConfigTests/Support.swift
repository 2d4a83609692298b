import Foundation
import TandemConfig

/// A site configuration assembled from ordered sections, so each test can
/// state only the one change it is about.
struct ConfigText {
    var sections: [(name: String, entries: [(key: String, value: String)])]

    /// A complete, valid PostgreSQL site whose password comes from `TEST_DB_PASSWORD`.
    static let valid = ConfigText(sections: [
        ("site", [("name", #""idc""#), ("pair", #""acme-dr""#)]),
        (
            "database",
            [
                ("engine", #""postgresql""#), ("host", #""127.0.0.1""#), ("port", "5433"),
                ("user", #""tandem""#), ("database", #""app""#), ("password_env", #""TEST_DB_PASSWORD""#),
                ("sslmode", #""require""#), ("application_name", #""tandem-idc""#),
            ]
        ),
        (
            "link",
            [
                ("mode", #""connect""#), ("peer", #""dr.example.net:7400""#), ("peer_site", #""cloud""#),
                ("ca", #""/etc/tandem/pair-ca.pem""#), ("certificate", #""idc.pem""#), ("key", #""keys/idc.key""#),
            ]
        ),
        ("tables", [("include", #"["public.*", "billing.invoice_*"]"#), ("exclude", #"["public.audit_*"]"#)]),
        ("spool", [("directory", #""/var/lib/tandem/spool""#), ("max_bytes", #""50GiB""#)]),
        ("batch", [("max_bytes", #""4MiB""#), ("max_delay_ms", "20"), ("compression_level", "3")]),
        ("log", [("level", #""debug""#)]),
    ])

    /// Only the required keys, for a MariaDB site.
    static let minimalMariaDB = ConfigText(sections: [
        ("site", [("name", #""cloud""#), ("pair", #""acme-dr""#)]),
        (
            "database",
            [("engine", #""mariadb""#), ("host", #""db.internal""#), ("user", #""tandem""#), ("server_id", "4242")]
        ),
        (
            "link",
            [
                ("mode", #""listen""#), ("listen", #""[::]:7400""#), ("peer_site", #""idc""#),
                ("ca", #""ca.pem""#), ("certificate", #""cloud.pem""#), ("key", #""cloud.key""#),
            ]
        ),
        ("spool", [("directory", #""spool""#)]),
    ])

    static let environment = ["TEST_DB_PASSWORD": "s3cr3t-Hunter2!"]

    func setting(_ section: String, _ key: String, _ value: String) -> ConfigText {
        var copy = self
        if let s = copy.sections.firstIndex(where: { $0.name == section }) {
            if let e = copy.sections[s].entries.firstIndex(where: { $0.key == key }) {
                copy.sections[s].entries[e].value = value
            } else {
                copy.sections[s].entries.append((key, value))
            }
        } else {
            copy.sections.append((section, [(key, value)]))
        }
        return copy
    }

    func removing(_ section: String, _ key: String? = nil) -> ConfigText {
        var copy = self
        if let key {
            if let s = copy.sections.firstIndex(where: { $0.name == section }) {
                copy.sections[s].entries.removeAll { $0.key == key }
            }
        } else {
            copy.sections.removeAll { $0.name == section }
        }
        return copy
    }

    var text: String {
        sections.map { section in
            "[\(section.name)]\n" + section.entries.map { "\($0.key) = \($0.value)\n" }.joined()
        }.joined(separator: "\n")
    }
}

let siteFile = "/etc/tandem/site.toml"

/// The error `parse` throws for `text`, or nil if it parses.
func parseError(
    _ text: String, file: String = siteFile, environment: [String: String] = ConfigText.environment
) -> ConfigError? {
    do {
        _ = try SiteConfig.parse(text, file: file, environment: environment)
        return nil
    } catch {
        return error
    }
}

/// A fresh directory under the system temporary directory, removed by `cleanup()`.
struct TemporaryDirectory {
    let path: String

    init() throws {
        path =
            URL(fileURLWithPath: NSTemporaryDirectory())
            .appendingPathComponent("tandem-config-tests-" + UUID().uuidString).path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    @discardableResult
    func write(_ relativePath: String, _ contents: String, permissions: Int = 0o600) throws -> String {
        let full = path + "/" + relativePath
        let directory = (full as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Data(contents.utf8).write(to: URL(fileURLWithPath: full))
        try FileManager.default.setAttributes([.posixPermissions: permissions], ofItemAtPath: full)
        return full
    }

    func cleanup() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Path of a file in the repository, found from this source file's location.
func repositoryPath(_ relative: String) -> String {
    let testsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    return testsDirectory.deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(relative).path
}
