/// A TABLE_MAP event: binds a table id to a table's shape for the rows events of one
/// statement. Kept close to the wire; `BinlogTable` interprets it.
///
/// The table id is not stable: the server hands out a new one whenever it reopens the
/// table (DDL, table cache eviction), so rows events are resolved through the latest map.
public struct TableMapEvent: Hashable, Sendable {
    public var tableID: UInt64
    public var flags: UInt16
    public var schema: String
    public var table: String
    /// The type byte per column (`enum_field_types`); ENUM and SET appear as STRING (254)
    /// with the real type in the metadata.
    public var columnTypes: [UInt8]
    /// Per column, its metadata bytes (0, 1 or 2, as the type needs) packed little-endian
    /// in the order they were written: byte 0 in the low 8 bits.
    public var columnMetadata: [UInt16]
    public var nullable: [Bool]
    public var optional: TableMapOptionalMetadata

    public init(
        tableID: UInt64, flags: UInt16, schema: String, table: String, columnTypes: [UInt8],
        columnMetadata: [UInt16], nullable: [Bool], optional: TableMapOptionalMetadata
    ) {
        self.tableID = tableID
        self.flags = flags
        self.schema = schema
        self.table = table
        self.columnTypes = columnTypes
        self.columnMetadata = columnMetadata
        self.nullable = nullable
        self.optional = optional
    }

    /// Number of metadata bytes a column type carries in the TABLE_MAP, nil for types
    /// whose size is unknown (nothing after such a column could be read).
    public static func metadataSize(of type: UInt8) -> Int? {
        switch type {
        case 1, 2, 3, 8, 9, 6, 7, 10, 11, 12, 13, 14: 0
        case 4, 5, 17, 18, 19, 245, 249, 250, 251, 252, 255: 1
        case 15, 16, 246, 247, 248, 253, 254: 2
        // 0 (pre-5.0 DECIMAL) among others: writers disagree on its metadata size.
        default: nil
        }
    }
}

/// The optional metadata block of a TABLE_MAP (`binlog_row_metadata=MINIMAL` or `FULL`),
/// as type-length-value fields. Every field is nil when the server did not send it.
public struct TableMapOptionalMetadata: Hashable, Sendable {
    /// Collations of a group of columns: either a default with exceptions, or one per column.
    /// Indexes count only the columns of the group (character columns, or ENUM/SET columns).
    public enum Collations: Hashable, Sendable {
        case defaultWithExceptions(default: UInt32, exceptions: [UInt32: UInt32])
        case perColumn([UInt32])

        /// The collation of the `index`-th column of the group.
        public func collation(at index: Int) -> UInt32? {
            switch self {
            case let .defaultWithExceptions(defaultCollation, exceptions):
                exceptions[UInt32(truncatingIfNeeded: index)] ?? defaultCollation
            case .perColumn(let list):
                index < list.count ? list[index] : nil
            }
        }
    }

    public struct KeyPart: Hashable, Sendable {
        public var column: Int
        /// Prefix length in characters; 0 for the whole column.
        public var prefix: Int

        public init(column: Int, prefix: Int = 0) {
            self.column = column
            self.prefix = prefix
        }
    }

    /// SIGNEDNESS (1): one bit per numeric column, most significant bit first; set = UNSIGNED.
    public var unsignedBitmap: [UInt8]?
    /// DEFAULT_CHARSET (2) or COLUMN_CHARSET (3): collations of the character columns.
    public var characterCollations: Collations?
    /// COLUMN_NAME (4).
    public var columnNames: [String]?
    /// SET_STR_VALUE (5): per SET column, its member strings (bytes in the column's charset).
    public var setMembers: [[[UInt8]]]?
    /// ENUM_STR_VALUE (6): per ENUM column, its member strings.
    public var enumMembers: [[[UInt8]]]?
    /// GEOMETRY_TYPE (7): per geometry column (0 geometry, 1 point, … 7 geometrycollection).
    public var geometryTypes: [UInt32]?
    /// SIMPLE_PRIMARY_KEY (8, prefix 0) or PRIMARY_KEY_WITH_PREFIX (9).
    public var primaryKey: [KeyPart]?
    /// ENUM_AND_SET_DEFAULT_CHARSET (10) or ENUM_AND_SET_COLUMN_CHARSET (11).
    public var enumAndSetCollations: Collations?
    /// Field types this parser does not know (skipped by their length).
    public var unknownFields: [UInt8]

    public init(
        unsignedBitmap: [UInt8]? = nil, characterCollations: Collations? = nil, columnNames: [String]? = nil,
        setMembers: [[[UInt8]]]? = nil, enumMembers: [[[UInt8]]]? = nil, geometryTypes: [UInt32]? = nil,
        primaryKey: [KeyPart]? = nil, enumAndSetCollations: Collations? = nil, unknownFields: [UInt8] = []
    ) {
        self.unsignedBitmap = unsignedBitmap
        self.characterCollations = characterCollations
        self.columnNames = columnNames
        self.setMembers = setMembers
        self.enumMembers = enumMembers
        self.geometryTypes = geometryTypes
        self.primaryKey = primaryKey
        self.enumAndSetCollations = enumAndSetCollations
        self.unknownFields = unknownFields
    }
}
