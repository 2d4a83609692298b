/// Metadata of one result column, copied from `MYSQL_FIELD`.
public struct MySQLColumn: Sendable, Equatable {
    /// The column label as the client sees it (the alias, if any).
    public var name: String
    /// The underlying column name before aliasing; empty for expressions.
    public var originalName: String
    /// The table alias; empty for expressions.
    public var table: String
    public var originalTable: String
    public var database: String
    /// The raw `enum_field_types` value (e.g. 252 `MYSQL_TYPE_BLOB`, 253 `MYSQL_TYPE_VAR_STRING`).
    public var typeCode: UInt32
    /// Character set/collation number of the column; 63 means `binary`.
    public var charsetNumber: UInt32
    /// Raw column flags (`NOT_NULL_FLAG`, `PRI_KEY_FLAG`, `BINARY_FLAG`, …).
    public var flags: UInt32

    /// Whether the column holds raw bytes rather than text, so callers should use
    /// `MySQLResult.bytes(row:column:)` instead of the `String` accessors.
    public var isBinary: Bool { charsetNumber == 63 }

    public init(
        name: String, originalName: String = "", table: String = "", originalTable: String = "",
        database: String = "", typeCode: UInt32 = 0, charsetNumber: UInt32 = 0, flags: UInt32 = 0
    ) {
        self.name = name
        self.originalName = originalName
        self.table = table
        self.originalTable = originalTable
        self.database = database
        self.typeCode = typeCode
        self.charsetNumber = charsetNumber
        self.flags = flags
    }
}

/// A fully buffered result set.
///
/// Invariant: this is a plain value. The rows are copied out of Connector/C's `MYSQL_RES`
/// (which is freed before the query call returns), with each field's exact length from
/// `mysql_fetch_lengths`, so values containing NUL bytes survive intact and nothing here
/// refers to C memory. That makes results `Sendable` and immune to the connection closing.
///
/// Row and column indexes are zero-based; an index out of range traps.
public struct MySQLResult: Sendable, Equatable {
    public var columns: [MySQLColumn]
    /// Every field's bytes as sent by the server in the text protocol; nil for SQL NULL.
    public var rawRows: [[[UInt8]?]]
    /// `mysql_affected_rows` after the statement (for SELECT: the number of rows).
    public var affectedRows: UInt64

    public init(columns: [MySQLColumn], rawRows: [[[UInt8]?]], affectedRows: UInt64) {
        self.columns = columns
        self.rawRows = rawRows
        self.affectedRows = affectedRows
    }

    public var rowCount: Int { rawRows.count }
    public var columnCount: Int { columns.count }
    public var columnNames: [String] { columns.map(\.name) }

    public func columnIndex(named name: String) -> Int? {
        columns.firstIndex { $0.name == name }
    }

    /// The field's exact bytes, or nil for SQL NULL.
    public func bytes(row: Int, column: Int) -> [UInt8]? {
        rawRows[row][column]
    }

    /// The field decoded as UTF-8 (the connection uses utf8mb4), or nil for SQL NULL.
    /// Invalid UTF-8 — only possible in binary columns — is repaired with U+FFFD; use
    /// `bytes(row:column:)` for those.
    public func value(row: Int, column: Int) -> String? {
        rawRows[row][column].map { String(decoding: $0, as: UTF8.self) }
    }

    /// The field in the named column as text; nil for NULL or an unknown column.
    public func value(row: Int, column name: String) -> String? {
        guard let column = columnIndex(named: name) else { return nil }
        return value(row: row, column: column)
    }

    /// Every row as text, NULL as nil.
    public var rows: [[String?]] {
        rawRows.map { row in row.map { $0.map { String(decoding: $0, as: UTF8.self) } } }
    }
}
