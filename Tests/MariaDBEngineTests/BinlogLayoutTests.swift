import MariaDBEngine
import TandemCore
import Testing

@Suite("binlog layout: binlog coordinates as bytes on one line")
struct BinlogLayoutTests {
    static let files = [
        BinlogLayout.File(name: "bin.000007", size: 1_000), BinlogLayout.File(name: "bin.000008", size: 250),
        BinlogLayout.File(name: "bin.000009", size: 40),
    ]

    @Test("files laid end to end from the oldest listed; the end is the newest file's size")
    func offsets() throws {
        let layout = BinlogLayout(files: Self.files)
        #expect(layout.offset(file: "bin.000007", position: 4)?.bytes == 4)
        #expect(layout.offset(file: "bin.000008", position: 100)?.bytes == 1_100)
        #expect(layout.offset(file: "bin.000009", position: 40)?.text == "bin.000009:40")
        let end = try #require(layout.end)
        #expect(end.bytes == 1_290)
        let read = try #require(layout.offset(file: "bin.000008", position: 200))
        #expect(end.bytes(since: read) == 90, "across a rotation: 50 bytes of .000008 and 40 of .000009")
        #expect(layout.offset(file: "bin.000010", position: 4) == nil, "a file rotated to since the listing")
        #expect(BinlogLayout(files: []).end == nil)
    }

    @Test("purging the oldest file starts a new space: offsets from before and after are not compared")
    func purgeStartsANewSpace() throws {
        let before = try #require(BinlogLayout(files: Self.files).offset(file: "bin.000008", position: 10))
        let after = try #require(BinlogLayout(files: Array(Self.files.dropFirst())).end)
        #expect(after.bytes(since: before) == nil)
    }
}
