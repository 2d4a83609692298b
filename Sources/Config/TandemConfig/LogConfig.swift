import TandemCore

/// `[log]`.
public struct LogConfig: Sendable, Equatable {
    public var level: LogLevel

    public init(level: LogLevel = .info) {
        self.level = level
    }
}

/// Log levels, spelled as swift-log spells them so the CLI can map them
/// one-to-one (`Logger.Level(rawValue: level.rawValue)`).
public enum LogLevel: String, Sendable, Equatable, CaseIterable {
    case trace, debug, info, notice, warning, error, critical
}
