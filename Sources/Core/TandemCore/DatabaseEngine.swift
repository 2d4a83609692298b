/// The database engines Tandem can capture from and apply to.
///
/// Engine-specific code lives in its own modules; the core only needs to know
/// which engine a position or a configuration belongs to.
public enum DatabaseEngine: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case postgresql
    case mariadb
    case mysql

    public var description: String { rawValue }
}

extension DatabaseEngine {
    /// The product's name as operators write it, for messages ("PostgreSQL apply failed").
    public var displayName: String {
        switch self {
        case .postgresql: "PostgreSQL"
        case .mariadb: "MariaDB"
        case .mysql: "MySQL"
        }
    }
}
