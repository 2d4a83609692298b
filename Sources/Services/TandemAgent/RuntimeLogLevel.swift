import Logging
import Synchronization

/// The process's log level, changeable while it runs: `tandem log-level debug` raises it on a
/// live agent (through the control socket) without a restart, which would lose the very state
/// the operator wants to see.
///
/// swift-log copies a handler's level into every `Logger` when it is made, so a level set at
/// bootstrap is fixed for good; handlers wrapped in `RuntimeLevelHandler` read this shared one
/// on every call instead. One per process (`shared`), as the logging bootstrap is.
public final class RuntimeLogLevel: Sendable {
    private let raw = Atomic<UInt8>(RuntimeLogLevel.code(.info))

    public static let shared = RuntimeLogLevel()

    public init(_ level: Logger.Level = .info) {
        raw.store(Self.code(level), ordering: .relaxed)
    }

    public var level: Logger.Level {
        get { Logger.Level.allCases[Int(raw.load(ordering: .relaxed))] }
        set { raw.store(Self.code(newValue), ordering: .relaxed) }
    }

    /// Sets the level; returns the one it replaces.
    @discardableResult
    public func exchange(_ level: Logger.Level) -> Logger.Level {
        Logger.Level.allCases[Int(raw.exchange(Self.code(level), ordering: .relaxed))]
    }

    /// `handler`, its level from now on this shared one. Called by the bootstrap for every new
    /// `Logger`, so it must not set the level: the bootstrap sets it once, before.
    public func wrapping(_ handler: some LogHandler) -> RuntimeLevelHandler {
        RuntimeLevelHandler(handler, shared: self)
    }

    private static func code(_ level: Logger.Level) -> UInt8 {
        UInt8(Logger.Level.allCases.firstIndex(of: level)!)
    }
}

/// A log handler whose level is the process's `RuntimeLogLevel`, unless a logger sets its own
/// (as a quiet check connection does with `logger.logLevel = .error`): that stays local to it.
public struct RuntimeLevelHandler: LogHandler {
    public var inner: any LogHandler
    public let shared: RuntimeLogLevel
    private var local: Logger.Level?

    public init(_ inner: some LogHandler, shared: RuntimeLogLevel) {
        self.inner = inner
        self.shared = shared
    }

    public var logLevel: Logger.Level {
        get { local ?? shared.level }
        set { local = newValue }
    }

    public var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }

    public var metadataProvider: Logger.MetadataProvider? {
        get { inner.metadataProvider }
        set { inner.metadataProvider = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }

    public func log(event: LogEvent) {
        inner.log(event: event)
    }
}
