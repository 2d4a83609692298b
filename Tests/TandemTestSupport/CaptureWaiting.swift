import Foundation
import CaptureKit
import TandemCodec
import TandemCore

/// A test waited for something that did not happen in time.
public struct TimedOut: Error, CustomStringConvertible {
    public var description: String
}

/// Polls `condition` until it holds; throws `TimedOut` naming `what` after `seconds`. For
/// conditions on real servers and processes, which settle at their own pace (never to assert
/// speed: the limit is generous and only bounds a hung test).
public func waitFor(_ what: String, seconds: Double, pollMicroseconds: UInt32 = 20_000, _ condition: () throws -> Bool)
    throws
{
    let deadline = Date().addingTimeInterval(seconds)
    while try !condition() {
        guard Date() < deadline else { throw TimedOut(description: "timed out after \(seconds) s waiting for \(what)") }
        usleep(pollMicroseconds)
    }
}

/// Takes batches from a capture until `enough` holds for the decoded ones; throws `TimedOut`
/// after `seconds`. Returns the batches as shipped and decoded.
public func collectBatches(from source: any BatchSource, seconds: Double, until enough: ([Batch]) -> Bool) throws
    -> ([SourceBatch], [Batch])
{
    let decoder = try BatchDecoder()
    var raw: [SourceBatch] = []
    var batches: [Batch] = []
    try waitFor("batches (got \(batches.count) so far)", seconds: seconds, pollMicroseconds: 5_000) {
        while let batch = try source.next() {
            raw.append(batch)
            batches.append(try decoder.decode(batch.frame))
            if enough(batches) { return true }
        }
        return enough(batches)
    }
    return (raw, batches)
}

/// A fresh directory under the system's temporary directory (the caller removes it).
public func makeTemporaryDirectory(prefix: String) throws -> String {
    let path = NSTemporaryDirectory() + "\(prefix)-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}
