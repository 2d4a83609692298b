# Debian packages Tandem needs to build, test and run its lab. Sourced by
# appliance/test and appliance/demo; installs only what is missing.
#
#   postgresql, mariadb-server        the real servers the tests and the lab start
#   libpq-dev                         libpq (PostgreSQL client + replication protocol)
#   default-libmysqlclient-dev        MariaDB Connector/C (client + binlog protocol)
#   libssl-dev                        OpenSSL libssl/libcrypto (TLS 1.3 link, certificates)
#   libzstd-dev                       batch compression
#   zlib1g-dev                        MariaDB compressed binlog events, binlog CRC-32
#   pkg-config                        lets SwiftPM find the four libraries
#   iproute2                          network namespaces for the emulated-WAN tests
#   iptables                          the link-cut tests drop the agents' loopback traffic
#                                     (`appliance/lab cut-link`), a silent partition
#   tmux                              a real terminal for the `tandem status --watch` test
#   prometheus                        a real Prometheus that the metrics tests start on a private
#                                     port to scrape the agent's /metrics endpoint (its system
#                                     service is not started, as for the database servers)
TANDEM_DEBIAN_PACKAGES=(
    postgresql mariadb-server
    libpq-dev default-libmysqlclient-dev libssl-dev libzstd-dev zlib1g-dev
    pkg-config iproute2 iptables procps bc prometheus tmux
)

tandem_missing_packages() {
    local missing=() pkg
    for pkg in "${TANDEM_DEBIAN_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    echo "${missing[@]}"
}

tandem_install_packages() {
    local missing
    missing=$(tandem_missing_packages)
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "tandem: missing Debian packages: $missing" >&2
        echo "  hint: run this script as root once, or: sudo apt-get install -y $missing" >&2
        return 1
    fi
    echo "==> installing Debian packages: $missing"
    export DEBIAN_FRONTEND=noninteractive
    # Package installs must not start system-wide services (the databases, Prometheus): the
    # tests and the lab run their own servers on private ports and directories.
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && created_policy=1
    fi
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing
    local status=$?
    [ "$created_policy" = 1 ] && rm -f "$policy"
    return $status
}

tandem_require_swift() {
    if ! command -v swift >/dev/null 2>&1; then
        if [ -x /opt/swift/usr/bin/swift ]; then
            export PATH="/opt/swift/usr/bin:$PATH"
        else
            echo "tandem: no Swift toolchain found (need Swift 6.1 or later on PATH)" >&2
            echo "  hint: install Swift from swift.org and put its usr/bin on PATH" >&2
            return 1
        fi
    fi
}
