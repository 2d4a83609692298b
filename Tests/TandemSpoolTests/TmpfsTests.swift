import Foundation
import TandemCodec
import TandemCore
import TandemTestSupport
import Testing

@testable import TandemSpool

#if canImport(Glibc)
    import Glibc
#endif

/// Runs a shell command line; returns its exit status and combined output.
private func shell(_ command: String) -> (status: Int32, output: String) {
    do {
        let result = try ChildProcess.capture("/bin/sh", ["-c", command + " 2>&1"], timeout: 30)
        return (
            result.status,
            (result.standardOutput + result.standardError).trimmingCharacters(in: .whitespacesAndNewlines)
        )
    } catch {
        return (-1, "\(error)")
    }
}

/// Whether a tmpfs can be mounted here (root, and a kernel and sandbox that allow it): probed
/// once by mounting and unmounting a tiny one. nil when it can; otherwise why not.
private let tmpfsUnavailableReason: String? = {
    guard getuid() == 0 else { return "not root, cannot mount a tmpfs" }
    let probe = TemporaryDirectory("tmpfs-probe")
    defer { probe.remove() }
    let mount = shell("mount -t tmpfs -o size=64k tmpfs '\(probe.path)'")
    guard mount.status == 0 else { return "mount -t tmpfs failed (\(mount.status)): \(mount.output)" }
    let unmount = shell("umount '\(probe.path)'")
    guard unmount.status == 0 else { return "umount of the probe tmpfs failed: \(unmount.output)" }
    return nil
}()

@Suite("Spool on a real full file system")
struct TmpfsTests {
    /// Fills a 256 KiB tmpfs until the kernel says ENOSPC. Needs root (mount): where it cannot
    /// mount one, the test is reported as skipped (and `appliance/test` under CI=true fails,
    /// since CI runs as root with tmpfs).
    @Test(
        "a really full disk: diskFull, nothing corrupted, appends resume once retention frees space",
        .enabled(
            if: tmpfsUnavailableReason == nil, Comment(rawValue: "needs a tmpfs mount: \(tmpfsUnavailableReason ?? "")")
        ))
    func realFullDisk() throws {
        let dir = TemporaryDirectory("tmpfs")
        defer { dir.remove() }
        let mountPoint = dir.path + "/mnt"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: false)
        // The probe mounted one: a failure now is a failure of the test, not a reason to skip.
        let mount = shell("mount -t tmpfs -o size=256k tmpfs '\(mountPoint)'")
        try #require(mount.status == 0, "mount failed (\(mount.status)): \(mount.output)")
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
        for attempt in [
            [Frames.frame(next, payload: payload)], (next...next + 3).map { Frames.frame($0, payload: payload) },
        ] {
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
