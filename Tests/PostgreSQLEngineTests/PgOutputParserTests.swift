import PostgreSQLEngine
import SeededRandom
import Testing

@Suite("pgoutput parser")
struct PgOutputParserTests {
    let parser = PgOutputParser()

    @Test("Begin, Commit and Origin")
    func transactionFrame() throws {
        #expect(
            try parser.parse(Messages.begin(final: 0x1_0000_0020, time: 42, xid: 9))
                == .begin(finalLSN: 0x1_0000_0020, commitTime: 42, xid: 9))
        #expect(
            try parser.parse(Messages.commit(lsn: 0x20, end: 0x48, time: -5))
                == .commit(flags: 0, commitLSN: 0x20, endLSN: 0x48, commitTime: -5))
        #expect(
            try parser.parse(MessageBuilder("O").u64(0x10).string("tandem_dr").bytes)
                == .origin(commitLSN: 0x10, name: "tandem_dr"))
    }

    @Test("Relation with key flags and typmods, and Type")
    func relationAndType() throws {
        let bytes = Messages.relation(
            16384, name: "t", identity: "d",
            columns: [(1, "id", 23, -1), (0, "amount", 1700, 2_621_450)])
        #expect(
            try parser.parse(bytes)
                == .relation(
                    .init(
                        xid: nil, relid: 16384, namespace: "public", name: "t", replicaIdentity: UInt8(ascii: "d"),
                        columns: [
                            .init(flags: 1, name: "id", typeOID: 23, typeModifier: -1),
                            .init(flags: 0, name: "amount", typeOID: 1700, typeModifier: 2_621_450),
                        ])))
        #expect(
            try parser.parse(MessageBuilder("Y").u32(90001).string("public").string("mood").bytes)
                == .type(xid: nil, oid: 90001, namespace: "public", name: "mood"))
    }

    @Test("Insert, Update (none, K, O), Delete (K, O), Truncate, with every tuple kind")
    func changes() throws {
        #expect(
            try parser.parse(Messages.insert(5, [.text("1"), .null, .unchanged, .binary([0, 1])]))
                == .insert(xid: nil, relid: 5, new: [.text(Array("1".utf8)), .null, .unchangedToast, .binary([0, 1])]))
        let new = MessageBuilder("x").tuple([.text("2")]).bytes.dropFirst()
        #expect(
            try parser.parse(MessageBuilder("U").u32(5).char("N").raw(Array(new)).bytes)
                == .update(xid: nil, relid: 5, old: nil, new: [.text([50])]))
        #expect(
            try parser.parse(MessageBuilder("U").u32(5).char("K").tuple([.text("1")]).char("N").raw(Array(new)).bytes)
                == .update(xid: nil, relid: 5, old: .key([.text([49])]), new: [.text([50])]))
        #expect(
            try parser.parse(MessageBuilder("U").u32(5).char("O").tuple([.null]).char("N").raw(Array(new)).bytes)
                == .update(xid: nil, relid: 5, old: .oldRow([.null]), new: [.text([50])]))
        #expect(
            try parser.parse(MessageBuilder("D").u32(5).char("K").tuple([.text("1")]).bytes)
                == .delete(xid: nil, relid: 5, old: .key([.text([49])])))
        #expect(
            try parser.parse(MessageBuilder("D").u32(5).char("O").tuple([.text("1")]).bytes)
                == .delete(xid: nil, relid: 5, old: .oldRow([.text([49])])))
        #expect(
            try parser.parse(MessageBuilder("T").u32(2).u8(3).u32(5).u32(6).bytes)
                == .truncate(xid: nil, options: 3, relids: [5, 6]))
    }

    @Test("Message and the stream messages; xid after the type byte only inside a stream")
    func streaming() throws {
        #expect(
            try parser.parse(MessageBuilder("M").u8(1).u64(77).string("tandem").u32(2).raw([7, 8]).bytes)
                == .message(xid: nil, transactional: true, lsn: 77, prefix: "tandem", content: [7, 8]))
        #expect(
            try parser.parse(MessageBuilder("S").u32(900).u8(1).bytes) == .streamStart(xid: 900, firstSegment: true))
        #expect(try parser.parse([UInt8(ascii: "E")]) == .streamStop)
        #expect(
            try parser.parse(MessageBuilder("c").u32(900).u8(0).u64(10).u64(20).i64(30).bytes)
                == .streamCommit(xid: 900, flags: 0, commitLSN: 10, endLSN: 20, commitTime: 30))
        #expect(try parser.parse(MessageBuilder("A").u32(900).u32(901).bytes) == .streamAbort(xid: 900, subxid: 901))
        let streamed = Messages.insert(5, [.text("1")], xid: 901)
        #expect(try parser.parse(streamed, inStream: true) == .insert(xid: 901, relid: 5, new: [.text([49])]))
        // The same bytes outside a stream are misframed and must be refused, not misread.
        #expect(throws: PgOutputParseError.self) { try parser.parse(streamed) }
        #expect(
            try parser.parse(MessageBuilder("T").u32(901).u32(1).u8(0).u32(5).bytes, inStream: true)
                == .truncate(xid: 901, options: 0, relids: [5]))
    }

    /// Every strict prefix of every valid message must throw, and so must a trailing byte.
    @Test("every truncation and a trailing byte are refused")
    func truncations() throws {
        let valid: [[UInt8]] = [
            Messages.begin(final: 1), Messages.commit(lsn: 1, end: 2),
            MessageBuilder("O").u64(1).string("o").bytes,
            Messages.relation(1, name: "t", columns: [(1, "id", 23, -1), (0, "v", 25, -1)]),
            MessageBuilder("Y").u32(1).string("s").string("n").bytes,
            Messages.insert(1, [.text("abc"), .null, .unchanged]),
            MessageBuilder("U").u32(1).char("K").tuple([.text("1")]).char("N").tuple([.text("2")]).bytes,
            MessageBuilder("D").u32(1).char("O").tuple([.text("1")]).bytes,
            MessageBuilder("T").u32(2).u8(0).u32(1).u32(2).bytes,
            MessageBuilder("M").u8(0).u64(1).string("p").u32(3).raw([1, 2, 3]).bytes,
            MessageBuilder("S").u32(1).u8(0).bytes,
            MessageBuilder("c").u32(1).u8(0).u64(1).u64(2).i64(3).bytes,
            MessageBuilder("A").u32(1).u32(2).bytes,
        ]
        for message in valid {
            _ = try parser.parse(message)
            for cut in 0..<message.count {
                #expect(throws: PgOutputParseError.self) { try parser.parse(Array(message[..<cut])) }
            }
            #expect(throws: PgOutputParseError.trailingBytes(messageType: message[0], count: 1)) {
                try parser.parse(message + [0])
            }
        }
    }

    @Test("hostile lengths, counts, kinds and strings")
    func hostile() {
        // A column length far beyond the message must not be trusted (no huge allocation).
        #expect(throws: PgOutputParseError.truncated(field: "column value", offset: 13, needed: Int(Int32.max))) {
            try parser.parse(MessageBuilder("I").u32(1).char("N").u16(1).char("t").i32(Int32.max).bytes)
        }
        #expect(throws: PgOutputParseError.negativeLength(field: "column length", offset: 9, length: -1)) {
            try parser.parse(MessageBuilder("I").u32(1).char("N").u16(1).char("t").i32(-1).bytes)
        }
        #expect(throws: PgOutputParseError.negativeCount(field: "tuple column count", offset: 6, count: -1)) {
            try parser.parse(MessageBuilder("I").u32(1).char("N").u16(0xFFFF).bytes)
        }
        #expect(throws: PgOutputParseError.unknownTupleKind(offset: 8, kind: UInt8(ascii: "z"))) {
            try parser.parse(MessageBuilder("I").u32(1).char("N").u16(1).char("z").bytes)
        }
        #expect(
            throws: PgOutputParseError.unexpectedByte(field: "new tuple marker", offset: 5, byte: UInt8(ascii: "K"))
        ) {
            try parser.parse(MessageBuilder("I").u32(1).char("K").u16(0).bytes)
        }
        #expect(throws: PgOutputParseError.truncated(field: "relids", offset: 6, needed: 4 * Int(Int32.max))) {
            try parser.parse(MessageBuilder("T").i32(Int32.max).u8(0).bytes)
        }
        #expect(throws: PgOutputParseError.negativeCount(field: "relation count", offset: 1, count: -2)) {
            try parser.parse(MessageBuilder("T").i32(-2).u8(0).bytes)
        }
        #expect(throws: PgOutputParseError.unterminatedString(field: "origin name", offset: 9)) {
            try parser.parse(MessageBuilder("O").u64(1).raw(Array("abc".utf8)).bytes)
        }
        #expect(throws: PgOutputParseError.invalidUTF8(field: "origin name", offset: 9)) {
            try parser.parse(MessageBuilder("O").u64(1).raw([0xC3, 0x28, 0]).bytes)
        }
        #expect(throws: PgOutputParseError.unknownMessageType(UInt8(ascii: "Z"))) {
            try parser.parse([UInt8(ascii: "Z")])
        }
        #expect(throws: PgOutputParseError.empty) { try parser.parse([]) }
    }

    /// Random bytes behind every valid type byte: the parser may accept or refuse, never trap.
    @Test("random bytes never crash the parser")
    func fuzz() {
        var rng = SplitMix64(seed: 0x7A4D_E11A)
        let types = Array("BCORYIUDTMSEcA".utf8)
        var accepted = 0
        for i in 0..<20_000 {
            var bytes = [types[i % types.count]]
            let length = Int(rng.next() % 40)
            for _ in 0..<length {
                // Bias towards small values and tuple kinds so deeper paths are reached.
                let r = rng.next()
                bytes.append(r % 3 == 0 ? [0, 1, 0x6E, 0x74, 0x75][Int(r / 3 % 5)] : UInt8(truncatingIfNeeded: r >> 8))
            }
            if (try? parser.parse(bytes, inStream: i % 2 == 0)) != nil { accepted += 1 }
        }
        #expect(accepted > 0)
    }
}
