import Foundation

/// How status figures read for a person: durations, sizes and times in the units a DBA uses.
public enum Format {
    public static func seconds(_ value: Double) -> String {
        if value < 0.001 { return "0 s" }
        if value < 1 { return String(format: "%.0f ms", value * 1000) }
        if value < 60 { return String(format: "%.1f s", value) }
        if value < 3600 { return String(format: "%dm %02ds", Int(value) / 60, Int(value) % 60) }
        return String(format: "%dh %02dm", Int(value) / 3600, (Int(value) % 3600) / 60)
    }

    public static func bytes(_ value: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var amount = Double(value)
        var unit = 0
        while amount >= 1024, unit < units.count - 1 {
            amount /= 1024
            unit += 1
        }
        return unit == 0 ? "\(value) B" : String(format: "%.1f %@", amount, units[unit])
    }

    /// A Unix time as UTC wall-clock time of day (with the date when not today).
    public static func time(_ unix: Double, relativeTo now: Double) -> String {
        let date = Date(timeIntervalSince1970: unix)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        let sameDay = calendar.isDate(date, inSameDayAs: Date(timeIntervalSince1970: now))
        let clock = String(format: "%02d:%02d:%02d", parts.hour ?? 0, parts.minute ?? 0, parts.second ?? 0)
        return sameDay
            ? "\(clock) UTC"
            : String(format: "%04d-%02d-%02d ", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0)
                + "\(clock) UTC"
    }

    public static func rate(_ value: Double?, _ unit: String) -> String {
        guard let value else { return "–" }
        return value >= 100 ? "\(Int(value.rounded())) \(unit)/s" : String(format: "%.1f %@/s", value, unit)
    }
}
