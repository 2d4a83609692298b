import ApplyKit
import CaptureKit
import Logging
import TandemAgent
import TandemConfig

extension EngineRegistry {
    /// The engines a Tandem build carries. Adding an engine: write its `AgentEngine` beside
    /// these and add it here; neither the agent's start nor the CLI changes.
    public static let builtIn = EngineRegistry([PostgreSQLAgentEngine(), MariaDBAgentEngine()])
}

/// Configuration helpers every engine's wiring shares.
enum EngineWiring {
    static func batching(_ site: SiteConfig) -> TransactionBatcher.Limits {
        let delay = site.batch.maxDelay.components
        return TransactionBatcher.Limits(
            maximumBytes: site.batch.maxBytes.bytes,
            maximumDelayNanoseconds: UInt64(delay.seconds) * 1_000_000_000 + UInt64(delay.attoseconds / 1_000_000_000))
    }

    /// The applier's start-up check: `open` the sink (its session setup is the check: log in,
    /// session settings, the checkpoint schema and table), read its checkpoint, close it. A
    /// connection failure is an outage (wait) unless `answered` says a server answered and so
    /// refused the login (exit); every other failure is a setup problem.
    static func checkSink(
        logger: Logger, open: (Logger) throws(ApplyError) -> any BatchSink, answered: () -> Bool
    ) -> [DatabaseProblem] {
        // The check's own connection logs nothing: the sink that stays open says it all.
        var quiet = logger
        quiet.logLevel = .error
        do {
            let sink = try open(quiet)
            defer { (sink as? any ClosableSink)?.close() }
            _ = try sink.checkpoint()
            return []
        } catch let error as ApplyError {
            if [.connection, .connectionLost].contains(error.kind), !answered() {
                return [DatabaseProblem(.unreachable, error.description, hint: error.hint)]
            }
            return [DatabaseProblem(.setup, error.description, hint: error.hint)]
        } catch {
            return [DatabaseProblem(.setup, "\(error)", hint: "Check the DR site's [database] settings.")]
        }
    }

    static func tableFilter(_ site: SiteConfig) -> (@Sendable (String, String) -> Bool)? {
        let tables = site.tables
        guard tables != .all else { return nil }
        return { @Sendable schema, table in tables.includes(schema: schema, table: table) }
    }
}

extension DatabaseProblem {
    /// A capture error of the start-up check: `.connection` means nothing answered.
    init(_ error: CaptureError) {
        self.init(error.kind == .connection ? .unreachable : .setup, error.description, hint: error.hint)
    }
}

/// A sink the start-up check can close after opening it.
protocol ClosableSink { func close() }
extension SinkDriver: ClosableSink {}
