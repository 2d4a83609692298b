/// The watermark of one chunk of an initial copy (`tandem seed`), as the primary's log carries
/// it: the seeder reads a chunk of rows under share locks and, in the same transaction, writes
/// this mark (PostgreSQL: a transactional logical message; MariaDB: a row of `tandem.seed_mark`).
/// The mark's place in the log is therefore exactly where the rows it stands for are current:
/// every change to them committed before is in the log before it, every later one after it.
///
/// `run` is drawn at random each time a seed starts in a process, so a mark read again from the
/// log after the agent restarted belongs to no live run and is ignored; its chunk is read again.
public struct SeedMark: Hashable, Sendable, Codable, CustomStringConvertible {
    public var run: UInt64
    public var chunk: UInt64

    public init(run: UInt64, chunk: UInt64) {
        self.run = run
        self.chunk = chunk
    }

    /// The prefix of a PostgreSQL logical message that carries a mark.
    public static let messagePrefix = "tandem.seed"

    /// How the mark is written into the source's log: `run-chunk` in lowercase hexadecimal.
    public var text: String { String(run, radix: 16) + "-" + String(chunk, radix: 16) }

    /// A mark from its log text; nil for anything else.
    public init?(text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let run = UInt64(parts[0], radix: 16), let chunk = UInt64(parts[1], radix: 16)
        else { return nil }
        self.init(run: run, chunk: chunk)
    }

    public var description: String { "seed mark \(text)" }
}
