/// `tandem status` for a person: the two questions first (what a disaster now would lose, how
/// long a switchover would wait), then the link, the stages and the peer, in plain words. Pure:
/// the report, its verdict and the time are given.
public enum StatusText {
    public static func render(_ pair: PairStatus, health: PairHealth, now: Double) -> String {
        let local = pair.local
        let applier = pair.applier
        let shipper = pair.shipper
        var lines: [String] = []
        lines.append(
            "Tandem pair \"\(local.pair)\" — site \(local.site) (\(local.role)), report made \(Format.time(local.reportedAt, relativeTo: now))"
        )
        lines.append("")
        switch health.state {
        case .healthy: lines.append("HEALTHY")
        case .degraded, .down:
            lines.append(health.state.rawValue.uppercased() + ": " + health.reasons.joined(separator: "; "))
        }
        lines.append("")
        let rpo = pair.rpoExposureSeconds
        var exposure = rpo.map(Format.seconds) ?? "unknown"
        if let transactions = shipper?.lag.rpoExposureTransactions {
            exposure += " (\(transactions) transaction\(transactions == 1 ? "" : "s")"
            exposure += shipper?.lag.rpoExposureLogBytes.map { ", \(Format.bytes($0)) of source log" } ?? ""
            exposure += shipper?.lag.rpoExposureBatchBytes.map { ", \(Format.bytes($0)) of batches)" } ?? ")"
        }
        lines.append(row("If the primary vanished now", "RPO exposure \(exposure)"))
        var wait = applier?.lag.applyLagSeconds.map { "apply lag \(Format.seconds($0))" } ?? "apply lag unknown"
        if let drain = applier?.lag.drainSeconds { wait += ", backlog drains in \(Format.seconds(drain))" }
        lines.append(row("A switchover would wait", wait))
        lines.append(
            row(
                "Last news from the source",
                applier?.lag.stalenessSeconds.map { "\(Format.seconds($0)) ago (staleness)" } ?? "unknown"))
        var capture = shipper?.lag.captureLagSeconds.map(Format.seconds) ?? "unknown"
        if let bytes = shipper?.lag.captureLagBytes { capture += " (\(Format.bytes(bytes)) of source log)" }
        lines.append(row("Capture lag at the primary", capture))
        lines.append("")
        lines.append(row("Link", linkLine(local, now: now)))
        lines.append(row("Positions (batch)", positionsLine(local)))
        if let log = shipper?.sourceLog, let end = log.end {
            lines.append(
                row(
                    "Source log", "end \(end), read \(log.read ?? "unknown"), durable at DR \(log.durable ?? "unknown")"
                ))
        }
        if let spool = applier?.spool {
            lines.append(row("DR spool", "\(Format.bytes(spool.bytes)), \(spool.backlogBatches) batches to apply"))
        }
        lines.append(
            row(
                "Rates",
                "captured \(Format.rate(shipper?.rates.capturedTransactionsPerSecond, "tx")), applied \(Format.rate(applier?.rates.appliedTransactionsPerSecond, "tx")) / \(Format.rate(applier?.rates.appliedRowsPerSecond, "rows"))"
            ))
        for site in [shipper, applier].compactMap({ $0 }) {
            let name = site.role == "shipper" ? "Primary database" : "DR database"
            var text = "\(site.database.state)"
            if let since = site.database.since { text += " since \(Format.time(since, relativeTo: now))" }
            if let failure = site.database.failure { text += ": \(failure)" }
            lines.append(row(name, text))
        }
        if let error = local.lastError {
            lines.append(row("Last error", "\(Format.time(error.at, relativeTo: now)): \(error.message)"))
        }
        lines.append("")
        if let peer = pair.peer, let received = pair.peerReceivedAt {
            let age = Format.seconds(max(0, now - received))
            if local.link.state == "up" {
                lines.append("Peer site \(peer.site) (\(peer.role)): its last report arrived \(age) ago.")
            } else {
                let since = local.link.since.map { " since \(Format.time($0, relativeTo: now))" } ?? ""
                lines.append(
                    "Peer site \(peer.site) (\(peer.role)) unreachable\(since); the figures above from it are its last report, \(age) old."
                )
            }
        } else {
            lines.append("Peer site: no report received yet (the link has not been up since this agent started).")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// One line per refresh for `status --watch` when the output is not a terminal (a log, a
    /// pipe): the time, the verdict and the four lags, in a fixed order a script can split.
    public static func line(_ pair: PairStatus, health: PairHealth, now: Double) -> String {
        let local = pair.local
        let applier = pair.applier
        let shipper = pair.shipper
        let rpo = pair.rpoExposureSeconds
        func figure(_ value: Double?) -> String { value.map(Format.seconds) ?? "unknown" }
        var text = "\(Format.time(now, relativeTo: now)) \(health.state.rawValue) rpo=\(figure(rpo))"
        text += " apply_lag=\(figure(applier?.lag.applyLagSeconds)) staleness=\(figure(applier?.lag.stalenessSeconds))"
        text += " capture_lag=\(figure(shipper?.lag.captureLagSeconds)) link=\(local.link.state)"
        if let reason = health.reasons.first { text += " (\(reason))" }
        return text
    }

    private static func row(_ label: String, _ value: String) -> String {
        label.padding(toLength: 28, withPad: " ", startingAt: 0) + " " + value
    }

    private static func linkLine(_ site: SiteStatus, now: Double) -> String {
        var text = site.link.state
        if let since = site.link.since { text += " since \(Format.time(since, relativeTo: now))" }
        if let rtt = site.link.roundTripSeconds { text += ", RTT \(Format.seconds(rtt))" }
        if let offset = site.link.clockOffsetSeconds {
            text += ", peer clock \(offset >= 0 ? "+" : "-")\(Format.seconds(abs(offset)))"
        }
        if let rate = site.rates.linkBytesPerSecond { text += ", \(Format.bytes(UInt64(rate)))/s" }
        if let ratio = site.rates.compressionRatio { text += ", compression \(String(format: "%.1f", ratio))×" }
        if site.link.state != "up", let reason = site.link.lastCloseReason { text += " (\(reason))" }
        return text
    }

    private static func positionsLine(_ site: SiteStatus) -> String {
        let stages: [(String, SiteStatus.StagePoint?)] = [
            ("captured", site.positions.captured), ("sent", site.positions.sent),
            ("durable", site.positions.durable), ("applied", site.positions.applied),
        ]
        return stages.compactMap { name, point in
            guard let point else { return nil }
            return "\(name) \(point.batch)" + (point.position.map { " (\($0))" } ?? "")
        }.joined(separator: ", ")
    }
}
