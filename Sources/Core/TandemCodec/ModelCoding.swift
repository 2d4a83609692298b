import TandemCore

enum PositionTag: UInt8 {
    case postgresql = 1, mariadb = 2, mysql = 3
}

enum ChangeKindTag: UInt8 {
    case insert = 0, update = 1, delete = 2, truncate = 3
    /// A row of the initial copy.
    case copy = 4
    /// An update or delete while its table is being copied (`RowChange.duringCopy`).
    case updateDuringCopy = 5, deleteDuringCopy = 6
}

extension BinaryWriter {
    mutating func position(_ position: Position) {
        switch position {
        case .postgresql(let lsn):
            u8(PositionTag.postgresql.rawValue)
            u64(lsn.rawValue)
        case .mariadb(let list):
            u8(PositionTag.mariadb.rawValue)
            varint(list.gtids.count)
            for gtid in list.gtids {
                varint(UInt64(gtid.domain))
                varint(UInt64(gtid.server))
                varint(gtid.sequence)
            }
        case .mysql(let position):
            // Canonical text: MySQL capture is not built yet, and the text form is
            // already validated and normalised by `MySQLGTIDSet`.
            u8(PositionTag.mysql.rawValue)
            string(position.gtidSet.description)
            optionalString(position.binlogFile)
            if let offset = position.binlogOffset { u8(1); varint(offset) } else { u8(0) }
        }
    }

    mutating func logicalType(_ type: LogicalType) {
        switch type {
        case .boolean: u8(0)
        case let .integer(bits, isSigned): u8(1); varint(bits); u8(isSigned ? 1 : 0)
        case let .decimal(precision, scale):
            u8(2); signed(Int64(precision ?? -1)); signed(Int64(scale ?? -1))
        case .float32: u8(3)
        case .float64: u8(4)
        case .text: u8(5)
        case .binary: u8(6)
        case .date: u8(7)
        case .time: u8(8)
        case .timeWithZone: u8(9)
        case .timestamp: u8(10)
        case .timestampWithZone: u8(11)
        case .interval: u8(12)
        case .json: u8(13)
        case .uuid: u8(14)
        case .bits: u8(15)
        case .enumeration: u8(16)
        case .set: u8(17)
        case .year: u8(18)
        case .array(let element): u8(19); logicalType(element)
        case .other: u8(20)
        }
    }

    /// Why the decoder would refuse this relation's column types, or nil. Checked
    /// once per relation per batch, so that the encoder never writes a frame that
    /// the receiver cannot read back exactly.
    static func problem(with relation: Relation) -> String? {
        func problem(with type: LogicalType, depth: Int) -> String? {
            switch type {
            case let .integer(bits, _) where ![8, 16, 24, 32, 64].contains(bits):
                return "integer width \(bits) (8, 16, 24, 32 or 64)"
            case let .decimal(precision, scale):
                for (name, value) in [("precision", precision), ("scale", scale)] {
                    if let value, value < 0 || value > Int(Int32.max) { return "decimal \(name) \(value)" }
                }
                return nil
            case .array(let element):
                guard depth < maximumArrayDepth else {
                    return "array type nested deeper than \(maximumArrayDepth) levels"
                }
                return problem(with: element, depth: depth + 1)
            default:
                return nil
            }
        }
        for column in relation.columns {
            if let found = problem(with: column.type, depth: 0) {
                return "column \(column.name) of \(relation.name): \(found)"
            }
        }
        return nil
    }

    mutating func relation(_ relation: Relation) {
        string(relation.name.schema)
        string(relation.name.name)
        varint(relation.columns.count)
        for column in relation.columns {
            string(column.name)
            logicalType(column.type)
            string(column.nativeType)
            varint(UInt64(column.nativeTypeID))
            u8((column.isKey ? 1 : 0) | (column.isNullable ? 2 : 0))
        }
    }
}

extension BinaryReader {
    mutating func position() throws(BatchCodecError) -> Position {
        let raw = try u8("position tag")
        switch PositionTag(rawValue: raw) {
        case .postgresql:
            return .postgresql(LSN(try u64("LSN")))
        case .mariadb:
            let count = try count("GTID count", minimumItemSize: 3)
            var gtids: [MariaDBGTID] = []
            gtids.reserveCapacity(count)
            for _ in 0..<count {
                let domain = try unsigned32("GTID domain")
                let server = try unsigned32("GTID server")
                gtids.append(MariaDBGTID(domain: domain, server: server, sequence: try varint("GTID sequence")))
            }
            do {
                return .mariadb(try MariaDBGTIDList(gtids))
            } catch {
                throw .malformed(field: "MariaDB position", reason: loggable(error.description, limit: 160))
            }
        case .mysql:
            let text = try string("MySQL GTID set")
            let file = try optionalString("binlog file")
            let offset: UInt64? =
                switch try u8("binlog offset flag") {
                case 0: nil
                case 1: try varint("binlog offset")
                case let flag: throw .malformed(field: "binlog offset", reason: "presence flag \(flag)")
                }
            do {
                return .mysql(
                    MySQLPosition(gtidSet: try MySQLGTIDSet(parsing: text), binlogFile: file, binlogOffset: offset))
            } catch {
                throw .malformed(field: "MySQL position", reason: loggable(error.description, limit: 160))
            }
        case nil:
            throw .malformed(field: "position", reason: "unknown position tag \(raw)")
        }
    }

    mutating func logicalType(depth: Int = 0) throws(BatchCodecError) -> LogicalType {
        let raw = try u8("column type")
        switch raw {
        case 0: return .boolean
        case 1:
            let bits = try varint("integer width")
            guard [8, 16, 24, 32, 64].contains(bits) else {
                throw .malformed(field: "column type", reason: "integer width \(bits)")
            }
            return .integer(bits: Int(bits), signed: try u8("integer signedness") != 0)
        case 2:
            let precision = try signed32("decimal precision")
            let scale = try signed32("decimal scale")
            return .decimal(precision: precision < 0 ? nil : Int(precision), scale: scale < 0 ? nil : Int(scale))
        case 3: return .float32
        case 4: return .float64
        case 5: return .text
        case 6: return .binary
        case 7: return .date
        case 8: return .time
        case 9: return .timeWithZone
        case 10: return .timestamp
        case 11: return .timestampWithZone
        case 12: return .interval
        case 13: return .json
        case 14: return .uuid
        case 15: return .bits
        case 16: return .enumeration
        case 17: return .set
        case 18: return .year
        case 19:
            guard depth < maximumArrayDepth else {
                throw .malformed(field: "column type", reason: "array type nested too deep")
            }
            return .array(try logicalType(depth: depth + 1))
        case 20: return .other
        default: throw .malformed(field: "column type", reason: "unknown type tag \(raw)")
        }
    }

    mutating func relation() throws(BatchCodecError) -> Relation {
        let schema = try string("relation schema")
        let name = try string("relation name")
        let count = try count("column count", minimumItemSize: 5)
        var columns: [Column] = []
        columns.reserveCapacity(count)
        for _ in 0..<count {
            let columnName = try string("column name")
            let type = try logicalType()
            let native = try string("column native type")
            let typeID = try unsigned32("column type id")
            let flags = try u8("column flags")
            guard flags & ~3 == 0 else { throw .malformed(field: "column flags", reason: "unknown bits \(flags)") }
            columns.append(
                Column(
                    name: columnName, type: type, nativeType: native, nativeTypeID: typeID,
                    isKey: flags & 1 != 0, isNullable: flags & 2 != 0))
        }
        return Relation(name: RelationName(schema: schema, name: name), columns: columns)
    }
}
