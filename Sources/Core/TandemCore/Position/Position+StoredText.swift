extension Position {
    /// The engine's own text of this position, the form `Position(engine:parsing:)` reads back:
    /// an LSN, a MariaDB GTID list, a MySQL GTID set. For MySQL that is the GTID set alone: the
    /// binlog file and offset are an operator's convenience (see `MySQLPosition`), and
    /// `description` renders them in a form the parser does not accept.
    ///
    /// Used wherever the engine travels beside the text (a link ACK carries both).
    public var engineText: String {
        switch self {
        case .mysql(let position): position.gtidSet.description
        default: description
        }
    }

    /// The one stored form of a position where the engine is not kept beside it (the DR
    /// checkpoint row, state files): the engine's name, a space, `engineText`
    /// (`postgresql 16/B374D848`, `mariadb 0-1-42`). Self-describing, so reading it back never
    /// guesses the engine from the characters of the text.
    public var storedText: String { "\(engine.rawValue) \(engineText)" }

    /// Reads `storedText` back. A text without a known engine name in front is refused.
    public init(storedText text: String) throws(PositionError) {
        guard let space = text.firstIndex(of: " "),
            let engine = DatabaseEngine(rawValue: String(text[..<space]))
        else {
            throw PositionError(
                nil, text: text,
                expected:
                    "an engine name (\(DatabaseEngine.allCases.map(\.rawValue).joined(separator: ", "))), a space and the position"
            )
        }
        self = try Position(engine: engine, parsing: String(text[text.index(after: space)...]))
    }
}
