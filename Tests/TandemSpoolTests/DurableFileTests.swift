import Foundation
import TandemStorage
import Testing

@Suite("durable small files")
struct DurableFileTests {
    static func directory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tandem-durable-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test("absent, written, replaced: load tells absent from present, and no temporary file is left")
    func replaceAndLoad() throws {
        let root = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let file = DurableFile(path: root + "/sub/state")
        #expect(try file.load() == nil)
        try file.replace(with: Array("one\n".utf8))
        #expect(try file.load() == Array("one\n".utf8))
        try file.replace(with: [])
        #expect(try file.load() == [])
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/sub") == ["state"])
        let mode = try FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? Int
        #expect(mode == 0o640)
    }

    @Test("a file that exists but cannot be read is an error naming it, not absent")
    func unreadableIsAnError() throws {
        let root = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        // A directory where the file should be: open succeeds, read fails with EISDIR.
        try FileManager.default.createDirectory(atPath: root + "/state", withIntermediateDirectories: false)
        let file = DurableFile(path: root + "/state")
        #expect {
            _ = try file.load()
        } throws: { error in
            (error as? DurableFileError)?.description.contains(root + "/state") == true
        }
    }

    @Test("a failed replace names the file and leaves the old content")
    func failedReplaceKeepsOldContent() throws {
        let root = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let file = DurableFile(path: root + "/state")
        try file.replace(with: Array("old".utf8))
        // The rename target is a non-empty directory now: rename fails.
        try FileManager.default.removeItem(atPath: file.path)
        try FileManager.default.createDirectory(atPath: file.path + "/blocker", withIntermediateDirectories: true)
        #expect {
            try file.replace(with: Array("new".utf8))
        } throws: { error in
            (error as? DurableFileError)?.description.contains("rename") == true
        }
        #expect(!FileManager.default.fileExists(atPath: file.path + ".tmp"), "the temporary file was left behind")
    }

    @Test("state records round-trip, and every kind of damage is named")
    func stateRecords() throws {
        let record = StateRecord([("server_uuid", "abc"), ("position", "0-1-5,1-2-3")])
        let bytes = record.rendered(comment: ["a comment"])
        #expect(String(decoding: bytes, as: UTF8.self) == "# a comment\nserver_uuid=abc\nposition=0-1-5,1-2-3\n")
        let back = try StateRecord(parsing: bytes)
        #expect(back == record)
        #expect(back["position"] == "0-1-5,1-2-3")
        // Spaces around '=' (as the role journal was written) read the same.
        #expect(try StateRecord(parsing: Array("role = applier\n\n".utf8))["role"] == "applier")
        let damaged: [([UInt8], String)] = [
            (Array("garbage\n".utf8), "line 1"),
            (Array("a=1\na=2\n".utf8), "twice"),
            ([0xFF, 0xFE, 0x3D], "UTF-8"),
            (Array("=1\n".utf8), "key"),
        ]
        for (bytes, reason) in damaged {
            #expect {
                _ = try StateRecord(parsing: bytes)
            } throws: { error in
                (error as? StateRecord.Damage)?.reason.contains(reason) == true
            }
        }
        #expect(throws: StateRecord.Damage.self) { try StateRecord(parsing: Array("a=1\n".utf8)).require("b") { $0 } }
        #expect(throws: StateRecord.Damage.self) {
            try StateRecord(parsing: Array("n=x\n".utf8)).require("n") { Int($0) }
        }
        #expect(try StateRecord(parsing: Array("n=7\n".utf8)).require("n") { Int($0) } == 7)
    }
}
