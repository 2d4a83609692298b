/// The configuration `tandem pair init` writes for each site of a new pair: valid as written
/// (given the password variable), with every value the operator must set marked PLACEHOLDER.
/// It lives with the configuration it must parse as, so a new key and its template change
/// together (tests parse it).
public enum StartingConfig {
    /// The port the starting configurations use for the link.
    public static let defaultLinkPort = 7400

    /// The starting configuration of `site`. Valid for `SiteConfig.parse` as
    /// written (given the password variable is set); the database settings
    /// and the peer's address are placeholders to edit.
    public static func text(pair: String, site: String, peer: String, dials: Bool) -> String {
        let link: String
        if dials {
            link = """
                [link]
                # \(site) dials out to \(peer), which listens. Which side dials is a network
                # choice and does not change when the data direction reverses.
                mode = "connect"
                # PLACEHOLDER: the address and port where \(peer) listens.
                peer = "\(peer).change-me.invalid:\(defaultLinkPort)"
                """
        } else {
            link = """
                [link]
                # \(site) accepts the connection that \(peer) dials. Which side dials is a
                # network choice and does not change when the data direction reverses.
                mode = "listen"
                # The local address and port; \(peer) must be able to reach it.
                listen = "0.0.0.0:\(defaultLinkPort)"
                """
        }
        return """
            # Tandem site configuration for site "\(site)" of pair "\(pair)".
            #
            # Written by `tandem pair init`. Copy this directory (\(site).toml, \(site).pem,
            # \(site).key, ca.pem) to the \(site) site, e.g. to /etc/tandem/, keeping
            # \(site).key readable only by the agent's user. Then edit every line marked
            # PLACEHOLDER and check the result with:
            #     tandem config check --config /etc/tandem/\(site).toml
            # appliance/config/*.example.toml describe every key.
            # Relative paths are resolved against the directory of this file.

            [site]
            name = "\(site)"
            pair = "\(pair)"

            [database]
            # PLACEHOLDER: this site's database. engine = "postgresql", "mariadb" or
            # "mysql" (MariaDB/MySQL also need server_id); both sites run the same engine.
            engine = "postgresql"
            # PLACEHOLDER: host of the local database server.
            host = "127.0.0.1"
            # PLACEHOLDER: the replication user created for Tandem.
            user = "tandem"
            # PLACEHOLDER: the database to replicate.
            database = "app"
            # The password is read from this environment variable of the agent (for
            # instance set by systemd's EnvironmentFile=); it never goes in this file.
            password_env = "TANDEM_DB_PASSWORD"

            \(link)
            # The site name \(peer)'s certificate must carry.
            peer_site = "\(peer)"
            ca = "ca.pem"
            certificate = "\(site).pem"
            key = "\(site).key"

            [spool]
            # PLACEHOLDER: a local disk with room for the longest outage to ride through.
            directory = "/var/lib/tandem/spool"

            """
    }
}
