import Foundation
import MariaDBEngine
import MySQLClient
import TandemCore
import TandemTestSupport
import Testing

/// Reading a test server's binlog files directly (the harness's binlog directory), which
/// needs no replication connection: the files hold exactly the raw events a replica gets.
enum ServerBinlog {
    /// Every event of every binlog file, in order (the index file lists them).
    static func events(of server: MariaDBServer) throws -> [[UInt8]] {
        let index = try String(contentsOfFile: server.binlogDirectory + "/mariadb-bin.index", encoding: .utf8)
        var events: [[UInt8]] = []
        for line in index.split(separator: "\n") where !line.isEmpty {
            let name = line.split(separator: "/").last.map(String.init) ?? String(line)
            let path = server.binlogDirectory + "/" + name
            let data = try #require(FileManager.default.contents(atPath: path), "cannot read \(path)")
            let bytes = [UInt8](data)
            let split = try BinlogFile.split(bytes)
            #expect(split.incompleteTail == nil, "torn tail in \(name)")
            events += split.events.map { Array(bytes[$0]) }
        }
        return events
    }

    /// The server's own collation table, as the capture layer would load it.
    static func charsets(_ connection: MySQLConnection) throws -> MariaDBCharsets {
        let result = try connection.query("SELECT ID, CHARACTER_SET_NAME FROM information_schema.COLLATIONS")
        var names: [UInt32: String] = [:]
        for row in result.rows {
            if let id = row[0].flatMap({ UInt32($0) }), let name = row[1] { names[id] = name }
        }
        return MariaDBCharsets(charsetNames: names)
    }
}

/// Records `@@gtid_binlog_pos` after each statement, so every binlog group the test caused
/// has the position the server reported for it.
final class PositionRecorder {
    let connection: MySQLConnection
    private(set) var positions: [MariaDBGTIDList] = []

    init(_ connection: MySQLConnection) { self.connection = connection }

    func run(_ sql: String) throws {
        try connection.execute(sql)
        let text = try connection.query("SELECT @@gtid_binlog_pos").value(row: 0, column: 0) ?? ""
        let position = try MariaDBGTIDList(parsing: text)
        if position != (positions.last ?? MariaDBGTIDList()) { positions.append(position) }
    }
}

/// MariaDB's SELECT text for a decoded value, so decoded rows can be compared with what
/// the server itself returns. Floats are compared separately (the server prints FLOAT
/// with six significant digits).
enum SelectText {
    static func render(_ value: Value, column: Column) -> [UInt8]? {
        // Fractional digits from the native type, "time(6)" → 6.
        let digits =
            column.nativeType.split(separator: "(").dropFirst().first
            .flatMap { Int($0.prefix { $0.isNumber }) } ?? 0
        func fraction(_ micros: Int64, _ digits: Int) -> String {
            guard digits > 0 else { return "" }
            let six = String(micros)
            let padded = String(repeating: "0", count: 6 - six.count) + six
            return "." + padded.prefix(digits)
        }
        func clock(_ time: TimeOfDay, _ digits: Int) -> String {
            let m = time.microseconds.magnitude
            let seconds = Int64(m / 1_000_000)
            let hours = String(seconds / 3600)
            return (time.microseconds < 0 ? "-" : "") + (hours.count < 2 ? "0" + hours : hours) + ":"
                + two(seconds / 60 % 60) + ":" + two(seconds % 60) + fraction(Int64(m % 1_000_000), digits)
        }
        switch (value, column.type) {
        case (.null, _): return nil
        case (.int(let v), .year): return Array((v == 0 ? "0000" : String(v)).utf8)
        case (.int(let v), _): return Array(String(v).utf8)
        case (.uint(let v), _): return Array(String(v).utf8)
        case (.decimal(let d), _): return Array(d.text.utf8)
        case (.bits(let b), _): return integerBytes(b)
        case (.date(let d), _): return Array(d.description.utf8)
        case (.time(let t), .time): return Array(clock(t, digits).utf8)
        case (.timestamp(let dt), .timestamp):
            return Array((dt.date.description + " " + clock(dt.time, digits)).utf8)
        case (.timestampWithZone(let ts), .timestampWithZone):
            let utc = ts.utc
            return Array((utc.date.description + " " + clock(utc.time, digits)).utf8)
        case (.native(let text), _): return Array(text.utf8)
        case (.text(let text), _): return Array(text.utf8)
        case (.bytes(let bytes), _): return bytes
        default: return Array("unrenderable \(value)".utf8)
        }
    }

    static func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }

    /// A `BitString` back as the column's big-endian integer bytes (what SELECT returns).
    static func integerBytes(_ bits: BitString) -> [UInt8] {
        var value: [UInt8] = Array(repeating: 0, count: (bits.count + 7) / 8)
        for i in 0..<bits.count {
            let set = bits.bytes[i / 8] & (0x80 >> UInt8(i % 8)) != 0
            let position = bits.count - 1 - i  // weight of this bit in the integer
            if set { value[value.count - 1 - position / 8] |= 1 << UInt8(position % 8) }
        }
        return value
    }
}

extension MySQLConnection {
    func rows(_ sql: String) throws -> [[[UInt8]?]] { try query(sql).rawRows }
}

/// Decodes all events; collects the outputs and the error that stopped decoding, if any.
struct DecodedStream {
    var outputs: [BinlogDecoderEvent] = []
    var error: BinlogDecodeError?
    var decoder: BinlogDecoder

    init(_ events: [[UInt8]], charsets: MariaDBCharsets, start: MariaDBGTIDList = MariaDBGTIDList()) {
        decoder = BinlogDecoder(startPosition: start, charsets: charsets)
        for event in events {
            do {
                if let output = try decoder.feed(event) { outputs.append(output) }
            } catch {
                self.error = error
                return
            }
        }
    }

    var transactions: [Transaction] {
        outputs.compactMap { if case .transaction(let t) = $0 { t } else { nil } }
    }
}
