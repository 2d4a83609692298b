/// Calendar and clock values kept exactly as the source stored them.
///
/// Foundation's `Date` is a `Double` of seconds: it cannot hold every microsecond of
/// a `timestamp(6)` far from 1970, so Tandem never routes column values through it.

/// A calendar date in the proleptic Gregorian calendar. Years are astronomical:
/// 0 is 1 BC, as PostgreSQL's `4713-11-24 BC` is year -4712.
public struct CivilDate: Hashable, Sendable, CustomStringConvertible {
    public var year: Int32
    public var month: UInt8
    public var day: UInt8

    public init(year: Int32, month: UInt8, day: UInt8) {
        self.year = year
        self.month = month
        self.day = day
    }

    /// Zero dates (`0000-00-00`) are legal in MariaDB under a permissive SQL mode;
    /// they are carried as month 0 / day 0 rather than rejected or rounded.
    public var isZeroDate: Bool { month == 0 || day == 0 }

    public var description: String {
        let y = year < 0 ? "-" + pad(-Int(year), 4) : pad(Int(year), 4)
        return "\(y)-\(pad(Int(month), 2))-\(pad(Int(day), 2))"
    }
}

/// A time of day or, for MySQL `TIME`, a signed duration up to ±838:59:59.999999,
/// in microseconds.
public struct TimeOfDay: Hashable, Sendable, CustomStringConvertible {
    public var microseconds: Int64

    public init(microseconds: Int64) { self.microseconds = microseconds }

    public init(hours: Int64, minutes: Int64, seconds: Int64, microseconds: Int64 = 0, negative: Bool = false) {
        let magnitude = ((hours * 60 + minutes) * 60 + seconds) * 1_000_000 + microseconds
        self.microseconds = negative ? -magnitude : magnitude
    }

    public var description: String {
        let sign = microseconds < 0 ? "-" : ""
        let m = microseconds.magnitude
        let frac = m % 1_000_000
        let totalSeconds = m / 1_000_000
        var text =
            "\(sign)\(pad(Int(totalSeconds / 3600), 2)):\(pad(Int(totalSeconds / 60 % 60), 2)):\(pad(Int(totalSeconds % 60), 2))"
        if frac != 0 { text += "." + pad(Int(frac), 6) }
        return text
    }
}

/// A date and time without a zone (`timestamp`, `DATETIME`).
public struct CivilDateTime: Hashable, Sendable, CustomStringConvertible {
    public var date: CivilDate
    public var time: TimeOfDay

    public init(date: CivilDate, time: TimeOfDay) {
        self.date = date
        self.time = time
    }

    public var description: String { "\(date) \(time)" }
}

/// An instant, in microseconds since 1970-01-01 00:00:00 UTC (`timestamptz`,
/// MariaDB `TIMESTAMP`, commit times).
public struct Timestamp: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var microsecondsSinceEpoch: Int64

    public init(microsecondsSinceEpoch: Int64) { self.microsecondsSinceEpoch = microsecondsSinceEpoch }

    /// Seconds since the Unix epoch, as status reports carry times.
    public var unixSeconds: Double { Double(microsecondsSinceEpoch) / 1_000_000 }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
        lhs.microsecondsSinceEpoch < rhs.microsecondsSinceEpoch
    }

    /// Converts to UTC calendar fields (days-from-civil, Howard Hinnant's algorithm).
    public var utc: CivilDateTime {
        let micros = microsecondsSinceEpoch
        var days = micros / 86_400_000_000
        var rest = micros % 86_400_000_000
        if rest < 0 { rest += 86_400_000_000; days -= 1 }
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        return CivilDateTime(
            date: CivilDate(year: Int32(year), month: UInt8(month), day: UInt8(day)),
            time: TimeOfDay(microseconds: rest))
    }

    public var description: String { "\(utc)+00" }
}

/// A PostgreSQL `interval`: months, days and microseconds are separate because a
/// month is not a fixed number of days and a day is not always 24 hours.
public struct Interval: Hashable, Sendable, CustomStringConvertible {
    public var months: Int32
    public var days: Int32
    public var microseconds: Int64

    public init(months: Int32, days: Int32, microseconds: Int64) {
        self.months = months
        self.days = days
        self.microseconds = microseconds
    }

    public var description: String { "\(months) mons \(days) days \(microseconds) us" }
}

func pad(_ value: Int, _ width: Int) -> String {
    let text = String(value)
    return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
}
