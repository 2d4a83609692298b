import CaptureKit
import Foundation
import TandemCodec
import TandemCore

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
