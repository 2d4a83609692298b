import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where `tandem pair init` puts things. One directory per pair:
///
/// ```
/// DIR/ca.pem  DIR/ca.key            the pair CA (keep ca.key off the sites)
/// DIR/README.txt                    what to copy where
/// DIR/<site>/<site>.pem .key        the site's certificate and key
/// DIR/<site>/ca.pem                 a copy of the CA certificate
/// DIR/<site>/<site>.toml            a starting configuration for the site
/// ```
///
/// Each `DIR/<site>/` is self-contained: the config names its files relative
/// to itself, so the directory can be copied to `/etc/tandem/` as it is.
public struct PairLayout: Sendable, Equatable {
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    public var caCertificate: String { directory + "/ca.pem" }
    public var caKey: String { directory + "/ca.key" }
    public var readme: String { directory + "/README.txt" }
    public func siteDirectory(_ site: String) -> String { "\(directory)/\(site)" }
    public func siteCertificate(_ site: String) -> String { "\(directory)/\(site)/\(site).pem" }
    public func siteKey(_ site: String) -> String { "\(directory)/\(site)/\(site).key" }
    public func siteCA(_ site: String) -> String { "\(directory)/\(site)/ca.pem" }
    public func siteConfig(_ site: String) -> String { "\(directory)/\(site)/\(site).toml" }

    /// Sites present in the directory (those with a certificate), sorted.
    public func sites() -> [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return entries.filter { PEMFile.exists(siteCertificate($0)) }.sorted()
    }
}

/// Why a pair directory could not be created or changed. Nothing is left
/// half-written: `create` builds in a temporary directory and renames it into
/// place only when complete; `rotate` renames the new files in only after
/// both are written.
public struct PairSetupError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public var hint: String

    public init(_ description: String, hint: String) {
        self.description = description
        self.hint = hint
    }
}

/// Creating a pair directory and rotating site certificates in it.
public enum PairDirectory {
    /// Creates the pair CA, a certificate and key for each of the two sites,
    /// and a starting configuration for each, in a new directory `directory`.
    /// `configuration` writes a site's configuration text (`StartingConfig` in the
    /// config target: this target knows certificates, not TOML).
    ///
    /// The first site dials out to the second, which listens: the usual shape,
    /// with the primary (IDC) behind a firewall that allows outbound
    /// connections, and the DR site in a cloud region that can expose a port.
    /// Refuses an existing, non-empty `directory` rather than mixing two CAs.
    @discardableResult
    public static func create(
        pair: String, sites: [String], at directory: String,
        configuration: (_ site: String, _ peer: String, _ dials: Bool) -> String
    ) throws(PairSetupError) -> PairLayout {
        try checkNames(pair: pair, sites: sites)
        let layout = PairLayout(directory: directory)
        try refuseExisting(directory)

        let parent = PEMFile.parent(of: directory)
        do {
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        } catch {
            throw PairSetupError(
                "cannot create the parent directory \(parent) of \(directory): \(error.localizedDescription)",
                hint: "Choose an --out path in a directory you can write to.")
        }
        let name = directory.split(separator: "/").last.map(String.init) ?? "pair"
        var template = Array("\(parent)/.\(name).tmp-XXXXXX".utf8CString)
        guard let created = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw PairSetupError(
                "cannot create a working directory next to \(directory): \(String(cString: strerror(errno)))",
                hint: "Choose an --out path in a directory you can write to.")
        }
        let staging = String(cString: created)
        do throws(PairSetupError) {
            try populate(PairLayout(directory: staging), pair: pair, sites: sites, configuration: configuration)
            PEMFile.syncDirectory(staging)
            // rename(2) fails on a non-empty target: a directory that appeared
            // meanwhile is still never overwritten.
            guard rename(staging, directory) == 0 else {
                let code = errno
                if code == ENOTEMPTY || code == EEXIST || code == ENOTDIR || code == EISDIR {
                    throw alreadyExists(directory)
                }
                throw PairSetupError(
                    "cannot move the new pair directory into place at \(directory): \(String(cString: strerror(code)))",
                    hint: "Check that the path is on a writable file system.")
            }
            PEMFile.syncDirectory(parent)
        } catch {
            try? FileManager.default.removeItem(atPath: staging)
            throw error
        }
        return layout
    }

    /// Issues a new certificate and key for `site` under the pair CA in
    /// `directory`, keeping the previous pair as `<site>.pem.old` /
    /// `<site>.key.old` (replacing older `.old` files). Returns the previous
    /// certificate, if readable, and the new one.
    ///
    /// The peer needs no change: it trusts the CA, not the certificate.
    @discardableResult
    public static func rotate(
        site: String, in directory: String,
        validity: CertificateValidity = .days(PairAuthority.defaultSiteValidityDays)
    ) throws(PairSetupError) -> (previous: Certificate?, current: Certificate) {
        if let problem = SiteName.problem(with: site) {
            throw PairSetupError("site name \(problem)", hint: "Give the name of one of the pair's sites with --site.")
        }
        let layout = PairLayout(directory: directory)
        guard PEMFile.isDirectory(directory) else {
            throw PairSetupError(
                "\(directory) is not a pair directory (it does not exist or is not a directory)",
                hint: "Give with --dir the directory `tandem pair init` created, the one holding ca.pem and ca.key.")
        }
        guard PEMFile.exists(layout.caCertificate), PEMFile.exists(layout.caKey) else {
            throw PairSetupError(
                "\(directory) has no pair CA (\(layout.caCertificate) and \(layout.caKey) are both needed)",
                hint: "Run rotate where the pair directory with the CA key is kept, not on a site.")
        }
        guard PEMFile.exists(layout.siteCertificate(site)) else {
            let known = layout.sites()
            throw PairSetupError(
                "the pair in \(directory) has no site \"\(site)\""
                    + (known.isEmpty ? "" : " (sites: \(known.joined(separator: ", ")))"),
                hint: "Give with --site one of the names used with `tandem pair init --sites`.")
        }
        let authority: PairAuthority
        do {
            authority = try PairAuthority(certificateFile: layout.caCertificate, keyFile: layout.caKey)
        } catch {
            throw PairSetupError(
                "cannot load the pair CA from \(directory): \(error)",
                hint: "ca.pem and ca.key must be the files `tandem pair init` wrote.")
        }
        let previous = try? Certificate(file: layout.siteCertificate(site))
        let issued = try issue(authority, site: site, validity: validity)

        let certificate = layout.siteCertificate(site)
        let key = layout.siteKey(site)
        // A crash here leaves only `.new` files (removed by the next rotate)
        // or a complete rename sequence; the site never has a key without its
        // certificate.
        unlink(certificate + ".new")
        unlink(key + ".new")
        try write(issued.certificate.pem, to: certificate + ".new", mode: PEMFile.certificateMode)
        try write(try keyPEM(issued), to: key + ".new", mode: PEMFile.keyMode)
        try move(certificate, to: certificate + ".old")
        if PEMFile.exists(key) { try move(key, to: key + ".old") }
        try move(certificate + ".new", to: certificate)
        try move(key + ".new", to: key)
        PEMFile.syncDirectory(layout.siteDirectory(site))
        return (previous, issued.certificate)
    }

    // MARK: Steps

    private static func checkNames(pair: String, sites: [String]) throws(PairSetupError) {
        if let problem = SiteName.problem(with: pair) {
            throw PairSetupError("pair name \(problem)", hint: "Use a short name such as \"acme-dr\".")
        }
        guard pair.utf8.count <= PairAuthority.maximumPairNameLength else {
            throw PairSetupError(
                "pair name \"\(pair)\" is longer than \(PairAuthority.maximumPairNameLength) characters, the most the CA certificate's name can carry",
                hint: "Use a short name such as \"acme-dr\".")
        }
        guard sites.count == 2 else {
            throw PairSetupError(
                "a pair has exactly two sites, got \(sites.count)"
                    + (sites.isEmpty ? "" : " (\(sites.map { "\"\($0)\"" }.joined(separator: ", ")))"),
                hint: "Give both names, the dialing (primary) site first: --sites idc,cloud.")
        }
        for site in sites {
            if let problem = SiteName.problem(with: site) {
                throw PairSetupError("site name \(problem)", hint: "Use short names such as \"idc\" and \"cloud\".")
            }
        }
        guard sites[0] != sites[1] else {
            throw PairSetupError(
                "the two sites must have different names, got \"\(sites[0])\" twice",
                hint: "Each site's certificate proves which site it is; give two names: --sites idc,cloud.")
        }
    }

    private static func alreadyExists(_ directory: String) -> PairSetupError {
        PairSetupError(
            "\(directory) already exists and is not empty; refusing to overwrite a pair directory",
            hint:
                "Choose a new --out directory; to renew one site's certificate use `tandem pair rotate --dir \(directory) --site SITE`."
        )
    }

    private static func refuseExisting(_ directory: String) throws(PairSetupError) {
        guard PEMFile.exists(directory) else { return }
        guard PEMFile.isDirectory(directory),
            let entries = try? FileManager.default.contentsOfDirectory(atPath: directory), entries.isEmpty
        else { throw alreadyExists(directory) }
    }

    private static func populate(
        _ layout: PairLayout, pair: String, sites: [String],
        configuration: (_ site: String, _ peer: String, _ dials: Bool) -> String
    ) throws(PairSetupError) {
        let authority: PairAuthority
        do {
            authority = try PairAuthority.create(pair: pair)
        } catch {
            throw PairSetupError(
                "cannot create the pair CA: \(error)",
                hint: "This is an OpenSSL failure; check the library installation.")
        }
        try write(authority.certificate.pem, to: layout.caCertificate, mode: PEMFile.certificateMode)
        let caKey: String
        do {
            caKey = try authority.key.pem()
        } catch {
            throw PairSetupError(
                "cannot encode the CA key: \(error)",
                hint: "This is an OpenSSL failure; check the library installation.")
        }
        try write(caKey, to: layout.caKey, mode: PEMFile.keyMode)
        for (index, site) in sites.enumerated() {
            let issued = try issue(authority, site: site, validity: .days(PairAuthority.defaultSiteValidityDays))
            do {
                try PEMFile.makeDirectory(layout.siteDirectory(site), mode: 0o700)
            } catch {
                throw PairSetupError(
                    "cannot create \(layout.siteDirectory(site)): \(error.reason)", hint: "Check the file system.")
            }
            try write(issued.certificate.pem, to: layout.siteCertificate(site), mode: PEMFile.certificateMode)
            try write(try keyPEM(issued), to: layout.siteKey(site), mode: PEMFile.keyMode)
            try write(authority.certificate.pem, to: layout.siteCA(site), mode: PEMFile.certificateMode)
            let peer = sites[1 - index]
            try write(
                configuration(site, peer, index == 0),
                to: layout.siteConfig(site), mode: PEMFile.certificateMode)
            PEMFile.syncDirectory(layout.siteDirectory(site))
        }
        try write(readme(pair: pair, sites: sites), to: layout.readme, mode: PEMFile.certificateMode)
    }

    private static func readme(pair: String, sites: [String]) -> String {
        """
        Tandem pair "\(pair)": sites "\(sites[0])" (dials) and "\(sites[1])" (listens).

        ca.pem, ca.key   The pair CA. Both sites trust only this CA on the link.
                         ca.key is needed only to issue site certificates
                         (`tandem pair rotate`); keep it here, off the sites.
        \(sites[0])/, \(sites[1])/   Everything one site needs: copy the directory to
                         that site (e.g. /etc/tandem/), edit the PLACEHOLDER lines
                         of its .toml, and run `tandem config check`.

        Renew a site certificate (the other site needs no change):
            tandem pair rotate --dir <this directory> --site <site>

        """
    }

    private static func issue(
        _ authority: PairAuthority, site: String, validity: CertificateValidity
    ) throws(PairSetupError) -> SiteCredentials {
        do {
            return try authority.issueSiteCertificate(site: site, validity: validity)
        } catch {
            throw PairSetupError(
                "cannot issue the certificate for \(site): \(error)",
                hint: "This is an OpenSSL failure; check the library installation.")
        }
    }

    private static func keyPEM(_ issued: SiteCredentials) throws(PairSetupError) -> String {
        do {
            return try issued.key.pem()
        } catch {
            throw PairSetupError(
                "cannot encode the key for \(issued.site): \(error)",
                hint: "This is an OpenSSL failure; check the library installation.")
        }
    }

    private static func write(_ text: String, to path: String, mode: mode_t) throws(PairSetupError) {
        do {
            try PEMFile.createNew(path, text: text, mode: mode)
        } catch {
            throw PairSetupError(
                "cannot write \(path): \(error.reason)",
                hint: error.errorNumber == EEXIST
                    ? "Remove the leftover file, then run the command again."
                    : "Check that the directory is writable and the disk is not full.")
        }
    }

    private static func move(_ from: String, to: String) throws(PairSetupError) {
        do {
            try PEMFile.move(from, to: to)
        } catch {
            throw PairSetupError("cannot rename \(from) to \(to): \(error.reason)", hint: "Check the file system.")
        }
    }
}
