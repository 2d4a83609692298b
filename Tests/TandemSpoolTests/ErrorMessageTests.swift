import TandemCodec
import TandemCore
import TandemTestSupport
import Testing

@testable import TandemSpool

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Spool error messages")
struct ErrorMessageTests {
    static let path = "/var/lib/tandem/spool/orders-pg"
    static let all: [SpoolError] = [
        .io(path: path, operation: "open", errno: EACCES),
        .locked(path: path),
        .notASpool(path: path, reason: "it holds segment files but no spool.id"),
        .streamMismatch(path: path + "/spool.id", expected: testStream, found: "billing-maria"),
        .unsupportedFormat(path: path + "/spool.id", version: 9),
        .corrupt(path: path + "/00000000000000000001.seg", offset: 4096, reason: "record checksum mismatch in batch 7"),
        .outOfSequence(path: path, expected: 8, received: 10),
        .outOfSequence(path: path, expected: 8, received: 7),
        .wrongStream(path: path, expected: testStream, found: otherStream, sequence: 8),
        .invalidFrame(path: path, index: 2, reason: .badMagic),
        .diskFull(path: path + "/00000000000000000001.seg"),
        .writeFailed(path: path + "/00000000000000000001.seg", operation: "fdatasync", errno: EIO),
        .spoolFull(path: path, bytes: 900, needed: 200, limit: 1000),
        .needsRestart(path: path, reason: "ftruncate failed"),
        .released(path: path, sequence: 3, oldest: 40),
        .released(path: path, sequence: 3, oldest: nil),
        .closed(path: path),
    ]

    @Test("one line naming the path, and a hint", arguments: all)
    func shape(error: SpoolError) {
        let operatorError: any OperatorError = error
        #expect(!operatorError.description.contains("\n"))
        #expect(operatorError.description.contains(Self.path))
        #expect(!operatorError.hint.isEmpty && !operatorError.hint.contains("\n"))
    }

    @Test("the numbers an operator needs are in the message")
    func specifics() {
        #expect(
            SpoolError.corrupt(path: "/x/1.seg", offset: 4096, reason: "r").description
                == "spool file /x/1.seg is damaged at offset 4096: r")
        #expect(
            SpoolError.outOfSequence(path: "/x", expected: 8, received: 10).description.contains(
                "batches 8–9 are missing"))
        #expect(
            SpoolError.outOfSequence(path: "/x", expected: 8, received: 7).description.contains("already holds batch 7")
        )
        #expect(SpoolError.io(path: "/x", operation: "open", errno: EACCES).description.contains("Permission denied"))
        #expect(
            SpoolError.writeFailed(path: "/x", operation: "fdatasync", errno: EIO).description.contains(
                "Input/output error"))
        #expect(SpoolError.spoolFull(path: "/x", bytes: 900, needed: 200, limit: 1000).description.contains("900"))
    }
}
