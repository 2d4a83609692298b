import Logging
import Synchronization
import TandemConfig

/// Which log format the process writes: text (swift-log's `StreamLogHandler` lines, the
/// default, unchanged) or JSON lines (`JSONLogHandler`).
///
/// How the two settings combine: the command line's `--log-format`, when given, wins; otherwise
/// the site's `[log] format`, which is only known once `AgentLaunch` has loaded the config —
/// until then (and for commands that load no site config) the format is text. Logging is
/// bootstrapped once, before the config is read, so `AgentLogHandler` asks this at each message.
public enum LogOutput {
    private static let chosen = Mutex<(format: LogFormat, byFlag: Bool)>((.text, false))

    public static var format: LogFormat { chosen.withLock { $0.format } }

    /// The command line's choice; nil (no flag) leaves the config to decide.
    public static func choose(flag: LogFormat?) {
        guard let flag else { return }
        chosen.withLock { $0 = (flag, true) }
    }

    /// The site's `[log] format`, taken unless the command line chose.
    public static func adopt(configured: LogFormat) {
        chosen.withLock { if !$0.byFlag { $0.format = configured } }
    }
}

/// The agent's log handler: each message goes out as `LogOutput.format` says at that moment.
public struct AgentLogHandler: LogHandler {
    private var text: StreamLogHandler
    private var json: JSONLogHandler

    public init(label: String) {
        text = StreamLogHandler.standardError(label: label)
        json = JSONLogHandler(label: label)
    }

    public var logLevel: Logger.Level {
        get { text.logLevel }
        set {
            text.logLevel = newValue
            json.logLevel = newValue
        }
    }

    public var metadata: Logger.Metadata {
        get { text.metadata }
        set {
            text.metadata = newValue
            json.metadata = newValue
        }
    }

    public var metadataProvider: Logger.MetadataProvider? {
        get { text.metadataProvider }
        set {
            text.metadataProvider = newValue
            json.metadataProvider = newValue
        }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { text[metadataKey: key] }
        set {
            text[metadataKey: key] = newValue
            json[metadataKey: key] = newValue
        }
    }

    public func log(event: LogEvent) {
        switch LogOutput.format {
        case .text: text.log(event: event)
        case .json: json.log(event: event)
        }
    }
}
