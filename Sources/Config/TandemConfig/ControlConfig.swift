/// `[control]`: the agent's local control socket, through which `tandem status` and the
/// operator's procedures reach it. Nothing of it is on the network: a UNIX socket, with access
/// decided by the connecting process's credentials.
public struct ControlConfig: Sendable, Equatable {
    /// Absolute path of the socket. Default: `control.sock` in the spool directory, which the
    /// agent owns and can always write.
    public var socket: String
    /// Members of this group (and of `operatorGroup`) may read status.
    public var monitorGroup: String
    /// Members of this group, and root, may also run procedures.
    public var operatorGroup: String
    /// Every control request is appended here: who, when, what, result.
    public var auditLog: String

    public static let defaultMonitorGroup = "tandem-monitor"
    public static let defaultOperatorGroup = "tandem-operator"
    /// `sun_path` holds 108 bytes with its terminating NUL.
    public static let maximumSocketPathBytes = 107

    public init(socket: String, monitorGroup: String, operatorGroup: String, auditLog: String) {
        self.socket = socket
        self.monitorGroup = monitorGroup
        self.operatorGroup = operatorGroup
        self.auditLog = auditLog
    }

    /// The defaults for a spool directory.
    public static func defaults(spoolDirectory: String) -> ControlConfig {
        ControlConfig(
            socket: spoolDirectory + "/control.sock", monitorGroup: defaultMonitorGroup,
            operatorGroup: defaultOperatorGroup, auditLog: spoolDirectory + "/control-audit.log")
    }
}

/// `[metrics]`: Prometheus metrics over HTTP. Off unless `listen` is set.
public struct MetricsConfig: Sendable, Equatable {
    /// host:port of the `/metrics` endpoint; nil: no endpoint.
    public var listen: (host: String, port: Int)?

    public init(listen: (host: String, port: Int)? = nil) {
        self.listen = listen
    }

    public static func == (a: MetricsConfig, b: MetricsConfig) -> Bool {
        a.listen?.host == b.listen?.host && a.listen?.port == b.listen?.port
    }
}

/// `[alerts]`: thresholds past which `tandem status` reports the pair degraded (exit 1), and
/// the agent logs the crossing once and the recovery once.
public struct AlertsConfig: Sendable, Equatable {
    /// RPO exposure (what a disaster now would lose), in seconds.
    public var rpoWarn: Duration
    /// Apply lag (what a switchover would wait for), in seconds.
    public var applyLagWarn: Duration
    /// Time since the DR site last heard from the source.
    public var stalenessWarn: Duration

    public static let defaultRPOWarn = Duration.seconds(30)
    public static let defaultApplyLagWarn = Duration.seconds(120)
    public static let defaultStalenessWarn = Duration.seconds(30)
    public static let secondsRange = 1...86_400

    public init(
        rpoWarn: Duration = defaultRPOWarn, applyLagWarn: Duration = defaultApplyLagWarn,
        stalenessWarn: Duration = defaultStalenessWarn
    ) {
        self.rpoWarn = rpoWarn
        self.applyLagWarn = applyLagWarn
        self.stalenessWarn = stalenessWarn
    }
}
