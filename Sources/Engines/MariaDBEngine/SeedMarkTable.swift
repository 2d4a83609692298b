import TandemCore

/// `tandem.seed_mark`, the table a MariaDB seed writes its watermarks into (`SeedMark`): one row,
/// replaced by every chunk in the chunk's own transaction, so the row event lands in the binlog
/// exactly where the chunk's rows are current. Capture setup creates it; the decoder turns its
/// row events into `Transaction.seedMarks` and never ships them as rows.
///
/// The mark column is ASCII whatever the server's default charset: the decoder reads only
/// binary, ASCII and UTF-8 columns, and a latin1 default would make every mark undecodable.
public enum SeedMarkTable {
    public static let name = RelationName(schema: "tandem", name: "seed_mark")

    /// The column holding `SeedMark.text`.
    public static let markColumn = "mark"

    public static let create =
        "CREATE TABLE IF NOT EXISTS `tandem`.`seed_mark` (id INT NOT NULL PRIMARY KEY, mark VARCHAR(64) CHARACTER SET ascii NOT NULL) ENGINE=InnoDB"

    /// The statement that writes `mark` (its text is hex digits and a dash: nothing to escape).
    public static func write(_ mark: SeedMark) -> String {
        "REPLACE INTO `tandem`.`seed_mark` (id, mark) VALUES (1, '\(mark.text)')"
    }

    /// The mark a decoded row change of the table carries: its new image's, when that parses.
    /// A delete carries none; text that is no mark belongs to nothing live and is dropped.
    static func mark(in change: RowChange) -> SeedMark? {
        guard change.kind != .delete, let new = change.new,
            let index = change.relation.columns.firstIndex(where: { $0.name == markColumn }), index < new.count,
            case .text(let text) = new[index]
        else { return nil }
        return SeedMark(text: text)
    }
}
