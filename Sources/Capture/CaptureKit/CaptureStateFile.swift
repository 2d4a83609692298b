import TandemCore
import TandemStorage

/// A capture's state file (which source it follows, and for MariaDB how far the DR site has it
/// durably): a `DurableFile` holding a `StateRecord`. Both engines' captures keep one, and both
/// must treat a damaged file the same way: stop with `.stateDamaged`, naming the file, and never
/// take it for a first start (which would record whatever source answers now over what the file
/// knew). The engine decides which fields it needs; `read` hands them over through `decode`.
public struct CaptureStateFile: Sendable {
    public let engine: DatabaseEngine
    public let file: DurableFile
    public var path: String { file.path }

    public init(engine: DatabaseEngine, path: String) {
        self.engine = engine
        self.file = DurableFile(path: path)
    }

    /// The decoded state, nil when there is no file; `.stateDamaged` when it exists but cannot
    /// be read, parsed or decoded. `expected` and `hint` complete the operator's message.
    public func read<State>(
        expected: String, hint: String, _ decode: (StateRecord) throws(StateRecord.Damage) -> State
    ) throws(CaptureError) -> State? {
        let bytes: [UInt8]?
        do { bytes = try file.load() } catch {
            throw CaptureError(
                engine, .stateDamaged, "the capture state file is unreadable: \(error.description)", hint: error.hint)
        }
        guard let bytes else { return nil }
        do {
            return try decode(try StateRecord(parsing: bytes))
        } catch {
            throw CaptureError(
                engine, .stateDamaged,
                "the capture state file \(path) is damaged: \(error.reason) (expected \(expected))",
                hint: hint)
        }
    }

    /// Replaces the file durably with `record`.
    public func write(_ record: StateRecord, comment: [String]) throws(CaptureError) {
        do {
            try file.replace(with: record.rendered(comment: comment))
        } catch {
            throw CaptureError(
                engine, .sourceSetup, "cannot record the capture state: \(error.description)", hint: error.hint)
        }
    }
}
