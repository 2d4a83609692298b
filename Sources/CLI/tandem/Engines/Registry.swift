import CaptureKit
import TandemAgent
import TandemConfig

/// The engines this `tandem` binary carries. Adding an engine: write its `AgentEngine` beside
/// these and add it here; the agent's dispatch does not change.
let agentEngines = EngineRegistry([PostgreSQLAgentEngine(), MariaDBAgentEngine()])

/// Configuration helpers every engine's wiring shares.
enum EngineWiring {
    static func batching(_ site: SiteConfig) -> TransactionBatcher.Limits {
        let delay = site.batch.maxDelay.components
        return TransactionBatcher.Limits(
            maximumBytes: site.batch.maxBytes.bytes,
            maximumDelayNanoseconds: UInt64(delay.seconds) * 1_000_000_000 + UInt64(delay.attoseconds / 1_000_000_000))
    }

    static func tableFilter(_ site: SiteConfig) -> (@Sendable (String, String) -> Bool)? {
        let tables = site.tables
        guard tables != .all else { return nil }
        return { @Sendable schema, table in tables.includes(schema: schema, table: table) }
    }
}
