/// Splits the bytes of a binlog file into its events, without interpreting them.
///
/// A binlog file is the magic 0xFE 'b' 'i' 'n' followed by events, each announcing its own
/// size at offset 9 of its header. A file being written may end inside an event; that torn
/// tail is reported as `incompleteTail` (its offset) rather than as an error, so a reader can
/// come back for it. A size field below the header length cannot be stepped over and is an
/// error.
public enum BinlogFile {
    public static let magic: [UInt8] = [0xFE, 0x62, 0x69, 0x6E]

    public struct Split: Sendable {
        /// Each complete event's byte range in the file.
        public var events: [Range<Int>]
        /// Where an incomplete last event starts, nil if the file ends on an event boundary.
        public var incompleteTail: Int?
    }

    public static func split(_ file: [UInt8]) throws(BinlogParseError) -> Split {
        guard file.count >= 4, Array(file[0..<4]) == magic else { throw .badMagic }
        var events: [Range<Int>] = []
        var offset = 4
        while offset < file.count {
            guard file.count - offset >= BinlogEventHeader.length else {
                return Split(events: events, incompleteTail: offset)
            }
            let size =
                Int(file[offset + 9]) | Int(file[offset + 10]) << 8 | Int(file[offset + 11]) << 16
                | Int(file[offset + 12]) << 24
            guard size >= BinlogEventHeader.length else {
                throw .invalidValue(
                    event: file[offset + 4], field: "event size", offset: offset,
                    reason: "\(size) is below the 19-byte header")
            }
            guard file.count - offset >= size else { return Split(events: events, incompleteTail: offset) }
            events.append(offset..<(offset + size))
            offset += size
        }
        return Split(events: events, incompleteTail: nil)
    }
}
