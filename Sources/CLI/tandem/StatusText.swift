import Foundation
import TandemStatus

/// `tandem status` without `--json`: the agent's report for a person. The report's own
/// rendering (`TandemStatus.StatusText`) when it is one this build knows; otherwise (an agent of
/// another version) its top-level fields, so an answer is never hidden. Its own file, so the
/// full rendering can replace it without touching the command.
enum StatusSummary {
    static func render(_ json: [UInt8], thresholds: AlertThresholds, now: Double) -> String {
        if let pair = try? StatusJSON.decode(PairStatus.self, from: json) {
            return StatusText.render(pair, health: PairHealth.evaluate(pair, thresholds: thresholds), now: now)
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(json)) as? [String: Any] else {
            return String(decoding: json, as: UTF8.self) + "\n"
        }
        return object.keys.sorted().map { key in
            let value = object[key].map { $0 is [String: Any] || $0 is [Any] ? "(…)" : "\($0)" } ?? ""
            return "\(key): \(value)"
        }.joined(separator: "\n") + "\n"
    }

    /// The agent's JSON as it came, pretty-printed with sorted keys.
    static func pretty(_ json: [UInt8]) -> String {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json)),
            let data = try? JSONSerialization.data(
                withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        else { return String(decoding: json, as: UTF8.self) + "\n" }
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
