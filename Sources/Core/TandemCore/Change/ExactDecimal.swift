/// An exact decimal number kept as its canonical text (`-12345.6700`).
///
/// NUMERIC and DECIMAL values travel as text, never as `Double`: a DR copy that
/// rounds money is not a copy. The text is validated once, on construction, so
/// every holder of an `ExactDecimal` can hand it to a database as a literal.
/// PostgreSQL's `NaN`, `Infinity` and `-Infinity` are accepted as they are.
public struct ExactDecimal: Hashable, Sendable, CustomStringConvertible {
    public let text: String

    public init?(_ text: String) {
        guard ExactDecimal.isValid(text) else { return nil }
        self.text = text
    }

    public var description: String { text }

    private static func isValid(_ text: String) -> Bool {
        // The same rule as below, over the string's UTF-8 in place: walking
        // `Substring.UTF8View` index by index cost more than decoding the value.
        if let numeric = text.utf8.withContiguousStorageIfAvailable(isNumeric) {
            return numeric || isSpecial(text)
        }
        return isSpecial(text) || isNumericSlow(text)
    }

    private static func isSpecial(_ text: String) -> Bool {
        text == "NaN" || text == "Infinity" || text == "-Infinity"
    }

    /// An optional sign, then digits with at most one point among them, and at
    /// least one digit.
    private static func isNumeric(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = 0
        if let first = bytes.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") { i = 1 }
        var digits = 0
        var seenPoint = false
        while i < bytes.count {
            let byte = bytes[i]
            if byte &- 48 < 10 {
                digits += 1
            } else if byte == UInt8(ascii: ".") && !seenPoint {
                seenPoint = true
            } else {
                return false
            }
            i += 1
        }
        return digits > 0
    }

    private static func isNumericSlow(_ text: String) -> Bool {
        var bytes = Substring(text).utf8[...]
        if bytes.first == UInt8(ascii: "-") || bytes.first == UInt8(ascii: "+") { bytes = bytes.dropFirst() }
        var digits = 0
        var seenPoint = false
        for byte in bytes {
            if byte >= 48 && byte <= 57 {
                digits += 1
            } else if byte == UInt8(ascii: ".") && !seenPoint {
                seenPoint = true
            } else {
                return false
            }
        }
        return digits > 0
    }
}
