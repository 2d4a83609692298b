import CTandemShims
import TandemCore

/// The on-disk format of a spool directory.
///
/// ```
/// <stream directory>/
///   spool.id                      identity: stream, format version, first sequence
///   00000000000000000001.seg      segment: records, the first holding batch 1
///   00000000000000004097.seg      next segment, first record holds batch 4097
/// ```
///
/// A segment is a plain concatenation of records; its name is the sequence of its
/// first record, zero-padded to 20 digits so names sort like the numbers. Record:
///
/// ```
/// offset  size  field
///  0      4     magic "TSPR"
///  4      4     frame length L (little-endian, like every integer here)
///  8      8     batch sequence
/// 16      8     append start: sequence of the first record written by the same append
/// 24      4     CRC32C of bytes 0..<24 (the header)
/// 28      L     the batch frame exactly as received (TNDB, with its own CRC32C)
/// 28+L    4     CRC32C of bytes 0..<28+L (the whole record)
/// ```
///
/// Why the two extra header fields:
/// - The header checksum makes the length trustworthy on its own, so a scan can
///   step over a record, tell "cut off by the end of the file" from "garbage", and
///   recognise intact records behind a damaged one without believing a flipped length.
/// - The append start tells recovery which records were written by one append (one
///   `pwrite`, one `fdatasync`). Only the last append can be partly on disk after a
///   crash, and its pages may reach the disk in any order, so a damaged record
///   followed by intact records *of the same append* is still a torn write, while one
///   followed by a record of a *later* append is real corruption (see `SpoolRecovery`).
enum SpoolFormat {
    static let version = 1
    static let identityFileName = "spool.id"
    static let identityTemporaryName = "spool.id.tmp"
    static let segmentSuffix = ".seg"
    static let segmentDigits = 20

    static let recordMagic: UInt32 = 0x5250_5354  // "TSPR" read little-endian
    static let headerSize = 28
    static let trailerSize = 4
    static let recordOverhead = headerSize + trailerSize

    static func segmentName(first: UInt64) -> String {
        let digits = String(first)
        return String(repeating: "0", count: segmentDigits - digits.count) + digits + segmentSuffix
    }

    /// The first sequence named by a segment file name, or nil for any other name.
    static func segmentFirst(fromName name: String) -> UInt64? {
        guard name.hasSuffix(segmentSuffix) else { return nil }
        let digits = name.dropLast(segmentSuffix.count)
        guard digits.utf8.count == segmentDigits, digits.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
            let value = UInt64(digits), value >= 1
        else { return nil }
        return value
    }

    static func recordSize(frameLength: Int) -> Int64 { Int64(frameLength) + Int64(recordOverhead) }
}

/// The fixed header in front of every record.
struct RecordHeader: Hashable {
    var length: UInt32
    var sequence: UInt64
    var appendStart: UInt64

    var recordSize: Int64 { SpoolFormat.recordSize(frameLength: Int(length)) }

    /// Parses and checks 28 header bytes; nil when the magic or the header checksum is wrong.
    init?(_ bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count >= SpoolFormat.headerSize)
        guard bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self).littleEndian == SpoolFormat.recordMagic,
            bytes.loadUnaligned(fromByteOffset: 24, as: UInt32.self).littleEndian
                == tandem_crc32c(0, bytes.baseAddress, 24)
        else { return nil }
        length = bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self).littleEndian
        sequence = bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self).littleEndian
        appendStart = bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self).littleEndian
    }

    init(length: UInt32, sequence: UInt64, appendStart: UInt64) {
        self.length = length
        self.sequence = sequence
        self.appendStart = appendStart
    }

    /// Appends a whole record (header, frame, checksum) to `buffer`.
    static func appendRecord(frame: [UInt8], sequence: UInt64, appendStart: UInt64, to buffer: inout [UInt8]) {
        let start = buffer.count
        buffer.append(contentsOf: repeatElement(0, count: SpoolFormat.headerSize))
        buffer.withUnsafeMutableBytes { raw in
            let header = raw.baseAddress! + start
            header.storeBytes(of: SpoolFormat.recordMagic.littleEndian, toByteOffset: 0, as: UInt32.self)
            header.storeBytes(of: UInt32(frame.count).littleEndian, toByteOffset: 4, as: UInt32.self)
            header.storeBytes(of: sequence.littleEndian, toByteOffset: 8, as: UInt64.self)
            header.storeBytes(of: appendStart.littleEndian, toByteOffset: 16, as: UInt64.self)
            header.storeBytes(of: tandem_crc32c(0, header, 24).littleEndian, toByteOffset: 24, as: UInt32.self)
        }
        buffer.append(contentsOf: frame)
        let crc = buffer.withUnsafeBytes { raw in
            tandem_crc32c(0, raw.baseAddress! + start, SpoolFormat.headerSize + frame.count)
        }
        withUnsafeBytes(of: crc.littleEndian) { buffer.append(contentsOf: $0) }
    }
}

/// The contents of `spool.id`: a few lines of text an operator can read with `cat`.
///
/// ```
/// tandem-spool
/// format 1
/// stream orders-pg
/// first-sequence 1
/// ```
/// `first-sequence` is the sequence the first record had to carry when the spool
/// was created: 1 for a new stream, the apply checkpoint + 1 when a removed spool is
/// re-created. It only matters while the spool holds no segment.
struct SpoolIdentity: Hashable {
    var format: Int
    var stream: String
    var firstSequence: UInt64

    var text: String {
        "tandem-spool\nformat \(format)\nstream \(stream)\nfirst-sequence \(firstSequence)\n"
    }

    enum ParseFailure: Error {
        case malformed(String)
        case unsupported(Int)
    }

    static func parse(_ text: String) -> Result<SpoolIdentity, ParseFailure> {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        guard lines.first == "tandem-spool" else {
            return .failure(.malformed("the identity file does not start with \"tandem-spool\""))
        }
        var fields: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let space = line.firstIndex(of: " ") else {
                return .failure(.malformed("identity line \"\(line.prefix(60))\" is not \"key value\""))
            }
            let key = String(line[..<space])
            guard fields[key] == nil else { return .failure(.malformed("identity key \"\(key)\" appears twice")) }
            fields[key] = String(line[line.index(after: space)...])
        }
        guard let formatText = fields["format"], let format = Int(formatText) else {
            return .failure(.malformed("the identity file has no valid \"format\" line"))
        }
        guard format == SpoolFormat.version else { return .failure(.unsupported(format)) }
        guard let stream = fields["stream"], !stream.isEmpty else {
            return .failure(.malformed("the identity file has no \"stream\" line"))
        }
        guard let firstText = fields["first-sequence"], let first = UInt64(firstText), first >= 1 else {
            return .failure(.malformed("the identity file has no valid \"first-sequence\" line"))
        }
        let unknown = Set(fields.keys).subtracting(["format", "stream", "first-sequence"])
        guard unknown.isEmpty else {
            return .failure(.malformed("unknown identity keys: \(unknown.sorted().joined(separator: ", "))"))
        }
        return .success(SpoolIdentity(format: format, stream: stream, firstSequence: first))
    }
}
