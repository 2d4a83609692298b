import ArgumentParser
import Foundation
import Logging
import TLSSupport
import TandemConfig
import TandemTransport

/// The pair's certificates: one private CA per pair, one certificate per site.
/// These commands run where the pair directory (with the CA key) is kept, an
/// operator's machine, not on the sites: a site only ever receives its own
/// directory.
struct Pair: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create and maintain the pair's certificates and starting configs.",
        subcommands: [PairInit.self, PairRotate.self])
}

struct PairInit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a pair CA, one certificate per site and starting configs.",
        discussion: """
            The first site dials out to the second, which listens (usually the primary site \
            dials out through its firewall to the DR site). Which side dials is independent of \
            which way the data flows. Refuses to write into an existing, non-empty directory.
            """)

    @Option(help: "Pair name (as site.pair in both configs).") var name: String
    @Option(help: "The two site names, comma-separated, the dialing site first (e.g. idc,cloud).") var sites: String
    @Option(help: "The pair directory to create.") var out: String
    @OptionGroup var options: GlobalOptions

    func run() async throws {
        options.bootstrapLogging()
        let logger = Logger(label: "tandem.pair")
        let names = sites.split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        let layout: PairLayout
        do {
            layout = try PairDirectory.create(pair: name, sites: names, at: out) { site, peer, dials in
                StartingConfig.text(pair: name, site: site, peer: peer, dials: dials)
            }
        } catch {
            throw report(error)
        }
        logger.debug("pair directory created", metadata: ["pair": "\(name)", "directory": "\(out)"])
        let ca = try? Certificate(file: layout.caCertificate)
        print("Created pair \"\(name)\" in \(out):")
        print(
            "  ca.pem, ca.key    the pair CA\(ca?.notAfter.map { ", valid until \(day($0))" } ?? "");"
                + " keep ca.key here, off the sites")
        for (index, site) in names.enumerated() {
            let shape = index == 0 ? "dials \(names[1])" : "listens for \(names[0])"
            print("  \(site)/  for site \(site) (\(shape)): \(site).toml, \(site).pem, \(site).key, ca.pem")
        }
        print("Next: edit the PLACEHOLDER lines of each site's .toml, copy each site's directory to that site")
        print("(e.g. /etc/tandem/), and check it there with `tandem config check --config <site>.toml`.")
    }
}

struct PairRotate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate",
        abstract: "Issue a new site certificate under the pair CA.",
        discussion: """
            The previous certificate and key are kept as <site>.pem.old and <site>.key.old. \
            The other site needs no change: it trusts the pair CA, not the certificate.
            """)

    @Option(help: "Site whose certificate to renew.") var site: String
    @Option(help: "Pair directory created by `pair init`.") var dir: String
    @OptionGroup var options: GlobalOptions

    func run() async throws {
        options.bootstrapLogging()
        let logger = Logger(label: "tandem.pair")
        let rotated: (previous: Certificate?, current: Certificate)
        do {
            rotated = try PairDirectory.rotate(site: site, in: dir)
        } catch {
            throw report(error)
        }
        let layout = PairLayout(directory: dir)
        logger.debug(
            "site certificate rotated",
            metadata: ["site": "\(site)", "serial": "\(rotated.current.serialNumberHex)"])
        print(
            "Issued a new certificate for site \"\(site)\" (serial \(rotated.current.serialNumberHex)"
                + "\(rotated.current.notAfter.map { ", valid until \(day($0))" } ?? ""))")
        if let previous = rotated.previous {
            print(
                "  previous certificate (serial \(previous.serialNumberHex)) kept as \(site).pem.old, \(site).key.old")
        }
        print("Next: install \(layout.siteCertificate(site)) and \(layout.siteKey(site)) at site \(site)")
        print("and restart its agent.")
    }
}

/// A date as the UTC calendar day, which is all an operator needs of a
/// certificate's expiry.
private func day(_ date: Date) -> String {
    let components = Calendar(identifier: .gregorian).dateComponents(in: TimeZone(identifier: "UTC")!, from: date)
    return String(format: "%04d-%02d-%02d", components.year ?? 0, components.month ?? 0, components.day ?? 0)
}
