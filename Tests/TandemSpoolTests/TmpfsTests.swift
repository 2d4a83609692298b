import Foundation
import TandemCodec
import TandemCore
import Testing

@testable import TandemSpool

#if canImport(Glibc)
    import Glibc
#endif

/// Runs a shell command line; returns its exit status and combined output.
private func shell(_ command: String) -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", command + " 2>&1"]
    let pipe = Pipe()
    process.standardOutput = pipe
    do { try process.run() } catch { return (-1, "\(error)") }
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return (process.terminationStatus, output.trimmingCharacters(in: .whitespacesAndNewlines))
}

@Suite("Spool on a real full file system")
struct TmpfsTests {
    /// Fills a 256 KiB tmpfs until the kernel says ENOSPC. Needs root (mount);
    /// skipped with a printed reason otherwise.
    @Test("a really full disk: diskFull, nothing corrupted, appends resume once retention frees space")
    func realFullDisk() throws {
        guard getuid() == 0 else {
            print("TmpfsTests.realFullDisk skipped: not root, cannot mount a tmpfs")
            return
        }
        let dir = TemporaryDirectory("tmpfs")
        defer { dir.remove() }
        let mountPoint = dir.path + "/mnt"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: false)
        let mount = shell("mount -t tmpfs -o size=256k tmpfs '\(mountPoint)'")
        guard mount.status == 0 else {
            print("TmpfsTests.realFullDisk skipped: mount failed (\(mount.status)): \(mount.output)")
            return
        }
        defer {
            let unmount = shell("umount '\(mountPoint)'")
            if unmount.status != 0 { Issue.record("umount \(mountPoint) failed: \(unmount.output)") }
        }

        let path = mountPoint + "/orders-pg"
        let payload = 3000
        let options = SpoolOptions(segmentBytes: 24 * 1024)
        let spool = try openSpool(path, options: options)
        var next: UInt64 = 1
        var failure: SpoolError?
        while next < 1000 {
            do {
                try spool.append(Frames.frame(next, payload: payload))
                next += 1
            } catch {
                failure = error
                break
            }
        }
        guard case .diskFull(let where_) = failure else {
            Issue.record("expected diskFull, got \(String(describing: failure))")
            spool.close()
            return
        }
        #expect(where_.hasPrefix(path))
        let durable = next - 1
        #expect(durable > 20, "the tmpfs held only \(durable) batches")
        #expect(spool.durableSequence == durable)
        let before = snapshot(path)

        // Still full: a single batch and a group both fail and leave nothing behind.
        for attempt in [[Frames.frame(next, payload: payload)], (next...next + 3).map { Frames.frame($0, payload: payload) }] {
            guard case .diskFull = spoolError({ () throws(SpoolError) in try spool.append(attempt) }) else {
                Issue.record("append on a full disk did not fail with diskFull")
                continue
            }
            #expect(snapshot(path) == before)
        }
        spool.close()

        // A restart finds nothing torn: every failed append was cut back already.
        let reopened = try openSpool(path, options: options)
        defer { reopened.close() }
        #expect(reopened.recovery.cutBytes == 0)
        #expect(reopened.durableSequence == durable)
        let records = try readAll(reopened, from: 1)
        #expect(records.map(\.sequence) == Array(1...durable))
        for record in records { Frames.expectValid(record, sequence: record.sequence, payload: payload) }

        // Apply catches up; retention frees whole segments; intake resumes.
        let released = try reopened.release(upTo: durable)
        #expect(released.segmentsDeleted >= 1)
        for sequence in next..<(next + 5) {
            #expect(try reopened.append(Frames.frame(sequence, payload: payload)) == sequence)
        }
        let tail = try readAll(reopened, from: reopened.status.oldestSequence!)
        #expect(tail.last?.sequence == next + 4)
        for record in tail { Frames.expectValid(record, sequence: record.sequence, payload: payload) }
    }
}
