import TandemCore

/// `[log]`.
public struct LogConfig: Sendable, Equatable {
    public var level: LogLevel
    /// Human-readable lines (the default), or one JSON object per line for a log collector.
    public var format: LogFormat

    public init(level: LogLevel = .info, format: LogFormat = .text) {
        self.level = level
        self.format = format
    }
}

public enum LogFormat: String, Sendable, Equatable, CaseIterable {
    case text, json
}

/// Log levels, spelled as swift-log spells them so the CLI can map them
/// one-to-one (`Logger.Level(rawValue: level.rawValue)`).
public enum LogLevel: String, Sendable, Equatable, CaseIterable {
    case trace, debug, info, notice, warning, error, critical
}
