import TOMLKit

/// A plain, immutable copy of a parsed TOML document.
///
/// TOMLKit hands out reference types wrapping C++ nodes; converting once into
/// this value tree keeps TOMLKit confined to this file and lets validation be
/// ordinary pattern matching on Sendable values.
indirect enum TOMLNode: Sendable, Equatable {
    case table([String: TOMLNode])
    case array([TOMLNode])
    case string(String)
    case integer(Int)
    case float(Double)
    case boolean(Bool)
    /// Dates and times are never valid in a site configuration; only the kind
    /// is kept, for the "got a date" part of an error.
    case temporal(String)

    /// "a string", "an integer", … — the "got" half of a type error.
    var kind: String {
        switch self {
        case .table: "a table"
        case .array: "an array"
        case .string: "a string"
        case .integer: "an integer"
        case .float: "a floating-point number"
        case .boolean: "a boolean"
        case .temporal(let kind): "a \(kind)"
        }
    }

    /// The kind with a short rendering of the value, e.g. `a string ("5432")`.
    var kindAndValue: String {
        switch self {
        case .string(let s): "\(kind) (\(quoted(s, limit: 40)))"
        case .integer(let i): "\(kind) (\(i))"
        case .float(let d): "\(kind) (\(d))"
        case .boolean(let b): "\(kind) (\(b))"
        case .table, .array, .temporal: kind
        }
    }
}

/// A TOML syntax error with the position TOMLKit reports (1-based).
struct TOMLSyntaxError: Error, Equatable {
    var message: String
    var line: Int
    var column: Int
}

enum TOMLDocument {
    /// Parses `text` into its root table.
    static func parse(_ text: String) -> Result<[String: TOMLNode], TOMLSyntaxError> {
        // TOMLKit passes the text to C++ as a C string, which would silently
        // drop everything after a NUL; report it instead, as TOML forbids it.
        if let nul = text.utf8.firstIndex(of: 0) {
            let prefix = text.utf8[..<nul]
            let line = prefix.count(where: { $0 == UInt8(ascii: "\n") }) + 1
            let lineStart =
                prefix.lastIndex(of: UInt8(ascii: "\n")).map { prefix.index(after: $0) }
                ?? prefix.startIndex
            let column = text.utf8[lineStart..<nul].count + 1
            return .failure(TOMLSyntaxError(message: "NUL character in file", line: line, column: column))
        }
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            return .failure(
                TOMLSyntaxError(
                    message: error.description, line: error.source.begin.line,
                    column: error.source.begin.column))
        } catch {
            return .failure(TOMLSyntaxError(message: "\(error)", line: 0, column: 0))
        }
        return .success(convert(table))
    }

    private static func convert(_ table: TOMLTable) -> [String: TOMLNode] {
        var result: [String: TOMLNode] = [:]
        for (key, value) in table {
            result[key] = convert(value)
        }
        return result
    }

    private static func convert(_ value: any TOMLValueConvertible) -> TOMLNode {
        switch value.type {
        case .table: .table(value.table.map { convert($0) } ?? [:])
        case .array: .array(value.array.map { array in array.map { convert($0) } } ?? [])
        case .string: .string(value.string ?? "")
        case .int: .integer(value.int ?? 0)
        case .double: .float(value.double ?? .nan)
        case .bool: .boolean(value.bool ?? false)
        case .date: .temporal("date")
        case .time: .temporal("time")
        case .dateTime: .temporal("date-time")
        }
    }
}
