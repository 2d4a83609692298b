import TandemCore

/// What a verify run found, for people (`VerifyText`) and scripts (`--json`, stable keys).
public struct VerifyReport: Codable, Hashable, Sendable {
    public var tables: [TableResult] = []

    public init(tables: [TableResult] = []) { self.tables = tables }

    public struct TableResult: Codable, Hashable, Sendable {
        public var table: String
        /// Rows at the primary in the chunks compared.
        public var rows: UInt64 = 0
        public var chunks: UInt64 = 0
        public var differences: [Difference] = []
        /// Rows that kept changing at the primary through every re-check: neither confirmed
        /// different nor shown equal.
        public var unsettled: [KeyValue] = []
        /// Why the table could not be compared (or only in part), when it could not.
        public var failure: VerifyError?

        public init(table: String) { self.table = table }
    }

    public struct Difference: Codable, Hashable, Sendable {
        public enum Kind: String, Codable, Sendable {
            /// At the primary, not at the DR site.
            case missingAtDR = "missing_at_dr"
            /// At the DR site, not at the primary.
            case extraAtDR = "extra_at_dr"
            /// At both, with different values in `columns`.
            case different
            /// The table's definition differs (missing at DR, other columns or key).
            case schema
        }
        public var kind: Kind
        /// The row's key; nil for a schema difference.
        public var key: KeyValue?
        public var columns: [String] = []
        public var detail: String?

        public init(kind: Kind, key: KeyValue?, columns: [String] = [], detail: String? = nil) {
            self.kind = kind
            self.key = key
            self.columns = columns
            self.detail = detail
        }
    }

    public var rows: UInt64 { tables.reduce(0) { $0 + $1.rows } }
    public var chunks: UInt64 { tables.reduce(0) { $0 + $1.chunks } }
    public var differenceCount: Int { tables.reduce(0) { $0 + $1.differences.count } }

    /// 0 identical, 1 differences found, 2 could not compare (some table failed, or rows never
    /// settled) and nothing was found different.
    public var exitCode: Int32 {
        if differenceCount > 0 { return 1 }
        if tables.contains(where: { $0.failure != nil || !$0.unsettled.isEmpty }) { return 2 }
        return 0
    }
}
