import PropertyBased
import TandemCore
import Testing

@Suite("LSN")
struct LSNTests {
    @Test(
        "parses and prints PostgreSQL's X/Y form",
        arguments: [
            ("0/0", UInt64(0)),
            ("16/B374D848", UInt64(0x16_B374_D848)),
            ("0/1", UInt64(1)),
            ("FFFFFFFF/FFFFFFFF", UInt64.max),
            ("a/bc", UInt64(0xA_0000_00BC)),
        ])
    func parse(text: String, value: UInt64) throws {
        let lsn = try LSN(parsing: text)
        #expect(lsn.rawValue == value)
        #expect(try LSN(parsing: lsn.description) == lsn)
        #expect(lsn.description == text.uppercased())
    }

    @Test(
        "rejects malformed text",
        arguments: [
            "", "/", "0/", "/0", "16B374D848", "1/2/3", "G/0", "0/123456789", "-1/0", " 0/0", "0/0 ", "0x1/0", "+1/0",
        ])
    func reject(text: String) {
        #expect(throws: PositionError.self) { try LSN(parsing: text) }
    }

    @Test func ordersByValue() async {
        await propertyCheck(input: Gen.uint64(), Gen.uint64()) { a, b in
            #expect((LSN(a) < LSN(b)) == (a < b))
            #expect(
                Position.postgresql(LSN(a)).compare(to: .postgresql(LSN(b)))
                    == (a < b ? .before : a == b ? .same : .after))
        }
    }

    @Test func roundTripsAnyValue() async throws {
        await propertyCheck(input: Gen.uint64()) { value in
            #expect((try? LSN(parsing: LSN(value).description)) == LSN(value))
        }
    }
}

@Suite("MariaDB GTID positions")
struct MariaDBPositionTests {
    @Test func parsesGtidBinlogPos() throws {
        let list = try MariaDBGTIDList(parsing: "1-2-5, 0-1-100")
        #expect(
            list.gtids == [
                MariaDBGTID(domain: 0, server: 1, sequence: 100), MariaDBGTID(domain: 1, server: 2, sequence: 5),
            ])
        #expect(list.description == "0-1-100,1-2-5")
        #expect(try MariaDBGTIDList(parsing: "").gtids.isEmpty)
        #expect(try MariaDBGTIDList(parsing: "4294967295-4294967295-18446744073709551615").gtids.count == 1)
    }

    @Test(
        "rejects malformed text",
        arguments: [
            "0-1", "0-1-2-3", "a-1-2", "0-1-", "-1-2", "0--1", "0-1-2,", ",0-1-2", "0-1-2,0-3-4", "4294967296-1-1",
            "0-1-18446744073709551616", "0 -1-2",
        ])
    func reject(text: String) {
        #expect(throws: PositionError.self) { try MariaDBGTIDList(parsing: text) }
    }

    @Test func comparesPerDomainBySequence() throws {
        let a = try MariaDBGTIDList(parsing: "0-1-100")
        let b = try MariaDBGTIDList(parsing: "0-2-101")  // new server after a switchover, same domain
        let c = try MariaDBGTIDList(parsing: "0-1-100,1-1-1")
        let d = try MariaDBGTIDList(parsing: "0-1-99,1-1-5")
        #expect(a.compare(to: b) == .before)
        #expect(b.compare(to: a) == .after)
        #expect(a.compare(to: a) == .same)
        #expect(a.compare(to: c) == .before)
        #expect(c.compare(to: d) == .incomparable)
        #expect(Position.mariadb(a).isAtOrBefore(.mariadb(c)))
        #expect(!Position.mariadb(c).isAtOrBefore(.mariadb(d)))
    }

    @Test func advancingNeverGoesBack() async {
        await propertyCheck(input: Gen.uint32(in: 0...3), Gen.uint64(in: 1...1_000_000)) { domain, sequence in
            let start = try! MariaDBGTIDList(parsing: "0-1-10,1-1-10,2-1-10,3-1-10")
            let next = start.advanced(by: MariaDBGTID(domain: domain, server: 7, sequence: 10 + sequence))
            #expect(start.compare(to: next) == .before)
            #expect((try? MariaDBGTIDList(parsing: next.description)) == next)
        }
    }
}

@Suite("MySQL GTID sets")
struct MySQLPositionTests {
    let uuidA = "3E11FA47-71CA-11E1-9E33-C80AA9429562"
    let uuidB = "4f11fa47-71ca-11e1-9e33-c80aa9429562"

    @Test func normalisesAndPrints() throws {
        let set = try MySQLGTIDSet(parsing: "\(uuidA):11:1-5:6-7,\n \(uuidB):3")
        #expect(set.description == "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-7:11,4f11fa47-71ca-11e1-9e33-c80aa9429562:3")
        #expect(try MySQLGTIDSet(parsing: set.description) == set)
        #expect(try MySQLGTIDSet(parsing: "").servers.isEmpty)
    }

    @Test(
        "rejects malformed text",
        arguments: [
            "3E11FA47-71CA-11E1-9E33-C80AA9429562", "3E11FA47-71CA-11E1-9E33-C80AA942956:1",
            "3E11FA47-71CA-11E1-9E33-C80AA9429562:0",
            "3E11FA47-71CA-11E1-9E33-C80AA9429562:5-1", "3E11FA47-71CA-11E1-9E33-C80AA9429562:a", "xyz:1",
            "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-",
        ])
    func reject(text: String) {
        #expect(throws: PositionError.self) { try MySQLGTIDSet(parsing: text) }
    }

    @Test func ordersByContainment() throws {
        var earlier = try MySQLGTIDSet(parsing: "\(uuidA):1-5")
        var later = earlier
        later.insert(uuid: uuidA, transaction: 6)
        #expect(earlier.compare(to: later) == .before)
        #expect(later.compare(to: earlier) == .after)
        earlier.insert(uuid: uuidB, transaction: 1)
        #expect(earlier.compare(to: later) == .incomparable)
        #expect(Position.mysql(MySQLPosition(gtidSet: later)).compare(to: .postgresql(.zero)) == .incomparable)
    }
}

@Suite("Position")
struct PositionTests {
    @Test func parsesPerEngine() throws {
        #expect(try Position(engine: .postgresql, parsing: "1/2") == .postgresql(LSN(0x1_0000_0002)))
        #expect(try Position(engine: .mariadb, parsing: "0-1-2").engine == .mariadb)
        #expect(throws: PositionError.self) { try Position(engine: .postgresql, parsing: "0-1-2") }
    }

    @Test func errorNamesEngineTextAndExpectation() {
        do {
            _ = try LSN(parsing: "nonsense")
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("postgresql"))
            #expect(error.description.contains("\"nonsense\""))
            #expect(error.description.contains("16/B374D848"))
        }
    }
}

@Suite("stored position text (pure)")
struct StoredPositionTests {
    @Test("each engine's position reads back from its stored text, to the same engine")
    func roundTrip() throws {
        let mysqlSet = try MySQLGTIDSet(parsing: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7")
        let positions: [Position] = [
            .postgresql(LSN(0x16_B374_D848)), .postgresql(.zero),
            .mariadb(try MariaDBGTIDList(parsing: "0-1-42,1-2-7")),
            .mysql(MySQLPosition(gtidSet: mysqlSet, binlogFile: "binlog.000003", binlogOffset: 1234)),
        ]
        for position in positions {
            let back = try Position(storedText: position.storedText)
            #expect(back.engine == position.engine)
            #expect(back.compare(to: position) == .same)
            #expect(try Position(engine: position.engine, parsing: position.engineText).compare(to: position) == .same)
        }
        #expect(Position.postgresql(LSN(0x16_B374_D848)).storedText == "postgresql 16/B374D848")
        #expect(try Position(storedText: "mariadb 0-1-42") == .mariadb(try MariaDBGTIDList(parsing: "0-1-42")))
    }

    @Test("a stored text without its engine, with an unknown engine, or with a bad position is refused")
    func refusals() {
        // The forms written before positions carried their engine: never guessed.
        for text in [
            "16/B374D848", "0-1-42", "", "oracle 1234", "postgresql", "postgresql 16/zz", "mariadb 16/B374D848",
        ] {
            #expect(throws: PositionError.self, "\(text)") { try Position(storedText: text) }
        }
        do {
            _ = try Position(storedText: "16/B374D848")
        } catch {
            #expect(error.engine == nil)
            #expect(error.description.contains("engine name"))
        }
    }
}
