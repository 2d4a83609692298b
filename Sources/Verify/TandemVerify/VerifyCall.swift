import Foundation
import TandemCore

/// A `VerifySide` request as one agent asks it of the other over the link (a REQUEST frame's
/// JSON body), and its answer. The agent that runs `tandem verify` drives the comparison; the
/// peer only answers these, on its own database.
public enum VerifyCall: Codable, Sendable, Equatable {
    case describe(names: [String]?)
    case boundary(table: VerifyTable, after: KeyValue?, rows: Int)
    case checksum(table: VerifyTable, range: KeyRange)
    case rows(table: VerifyTable, range: KeyRange, limit: Int)
    /// The primary's current log position, or what the DR site has applied through.
    case position

    public enum Answer: Codable, Sendable, Equatable {
        case tables([VerifyTable])
        case key(KeyValue?)
        case sum(ChunkSum)
        case rows([VerifyRow])
        /// `Position.storedText`, nil when not known.
        case position(String?)
        case failed(VerifyError)
    }

    /// Runs the call on `side` (one that answers `currentPosition` as this site must).
    public func answer(on side: some VerifySide) -> Answer {
        do throws(VerifyError) {
            switch self {
            case .describe(let names): return .tables(try side.describe(names))
            case .boundary(let table, let after, let rows):
                return .key(try side.boundary(table, after: after, rows: rows))
            case .checksum(let table, let range): return .sum(try side.checksum(table, range))
            case .rows(let table, let range, let limit): return .rows(try side.rows(table, range, limit: limit))
            case .position: return .position(try side.currentPosition()?.storedText)
            }
        } catch {
            return .failed(error)
        }
    }

    public func encoded() -> [UInt8] { Self.encode(self) }

    static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        (try? Array(JSONEncoder().encode(value))) ?? Array("{}".utf8)
    }

    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws(VerifyError) -> T {
        do { return try JSONDecoder().decode(type, from: Data(bytes)) } catch {
            throw VerifyError(
                "the peer site's verify message is unreadable (\(error))",
                hint: "Run the same Tandem version at both sites.")
        }
    }
}

extension VerifyCall.Answer {
    public func encoded() -> [UInt8] { VerifyCall.encode(self) }
}

/// A `VerifySide` at the other site: each call is a `VerifyCall` over the link, `send` blocking
/// until the peer's answer (or the link's failure, as a `VerifyError`).
public final class PeerVerifySide: VerifySide {
    let send: ([UInt8]) throws(VerifyError) -> [UInt8]

    public init(send: @escaping ([UInt8]) throws(VerifyError) -> [UInt8]) {
        self.send = send
    }

    private func ask(_ call: VerifyCall) throws(VerifyError) -> VerifyCall.Answer {
        let answer = try VerifyCall.decode(VerifyCall.Answer.self, from: try send(call.encoded()))
        if case .failed(let error) = answer { throw error }
        return answer
    }

    private static func unexpected(_ answer: VerifyCall.Answer) -> VerifyError {
        VerifyError(
            "the peer site answered a verify call with \(answer)", hint: "Run the same Tandem version at both sites.")
    }

    public func describe(_ names: [String]?) throws(VerifyError) -> [VerifyTable] {
        let answer = try ask(.describe(names: names))
        guard case .tables(let tables) = answer else { throw Self.unexpected(answer) }
        return tables
    }

    public func boundary(_ table: VerifyTable, after: KeyValue?, rows: Int) throws(VerifyError) -> KeyValue? {
        let answer = try ask(.boundary(table: table, after: after, rows: rows))
        guard case .key(let key) = answer else { throw Self.unexpected(answer) }
        return key
    }

    public func checksum(_ table: VerifyTable, _ range: KeyRange) throws(VerifyError) -> ChunkSum {
        let answer = try ask(.checksum(table: table, range: range))
        guard case .sum(let sum) = answer else { throw Self.unexpected(answer) }
        return sum
    }

    public func rows(_ table: VerifyTable, _ range: KeyRange, limit: Int) throws(VerifyError) -> [VerifyRow] {
        let answer = try ask(.rows(table: table, range: range, limit: limit))
        guard case .rows(let rows) = answer else { throw Self.unexpected(answer) }
        return rows
    }

    public func currentPosition() throws(VerifyError) -> Position? {
        let answer = try ask(.position)
        guard case .position(let text) = answer else { throw Self.unexpected(answer) }
        guard let text else { return nil }
        do { return try Position(storedText: text) } catch {
            throw VerifyError("the peer site sent an unreadable position: \(error)", hint: "Report it.")
        }
    }

    public func close() {}
}
