import SeededRandom
import Testing

@testable import MariaDBEngine

/// zlib streams made by `zlib.compress`, one per block type, through the system zlib.
@Suite("zlib inflate")
struct InflateTests {
    static let stored: [UInt8] = [
        0x78, 0x01, 0x01, 0x07, 0x00, 0xF8, 0xFF, 0x73, 0x74, 0x6F, 0x72, 0x65, 0x64, 0x21, 0x0B,
        0xEF, 0x02, 0xB3,
    ]
    static let dynamic: [UInt8] = [
        0x78, 0xDA, 0xB5, 0xCB, 0xD1, 0x01, 0x80, 0x10, 0x14, 0x46, 0xE1, 0x55, 0xFE, 0x16, 0x68, 0x96, 0x1E, 0x2C,
        0x40,
        0x11, 0x15, 0x37, 0x84, 0x98, 0xBE, 0xBB, 0x44, 0xCF, 0xE7, 0x3B, 0xC2, 0x6A, 0xC4, 0xE2, 0xD6, 0x13, 0x2A,
        0x51,
        0x0B, 0x30, 0xF4, 0xE2, 0x28, 0xFE, 0xCE, 0xA0, 0xAA, 0x13, 0x1E, 0xCE, 0x97, 0x1C, 0x1D, 0x1B, 0xED, 0x33,
        0xC4,
        0x6F, 0x78, 0x91, 0xEC, 0x7C, 0x87, 0x62, 0xD4, 0xDC, 0x63, 0x61, 0x5C, 0xD5, 0x9C, 0x86, 0x0E, 0xB8, 0x5C,
        0x2C,
        0x94, 0xF8, 0xDD, 0xF3, 0xF4, 0x01, 0xB2, 0xEE, 0x3F, 0x00,
    ]
    static let dynamicText = Array(
        (String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 3)
            + "Pack my box with five dozen liquor jugs!").utf8)

    func inflate(_ bytes: [UInt8], _ length: Int) throws(InflateError) -> [UInt8] {
        try bytes.withUnsafeBufferPointer { (b) throws(InflateError) in try Inflate.zlib(b, declaredLength: length) }
    }

    @Test("stored, fixed-Huffman and dynamic-Huffman blocks")
    func vectors() throws {
        #expect(try inflate(Self.stored, 7) == Array("stored!".utf8))
        #expect(try inflate(BinlogEventParserTests.fixedZlib, 23) == Array("hello hello hello hello".utf8))
        #expect(try inflate(Self.dynamic, Self.dynamicText.count) == Self.dynamicText)
    }

    @Test("header, checksum, size and trailing-byte refusals")
    func refusals() {
        #expect(throws: InflateError.corrupt("incorrect header check")) {
            try inflate([0x79, 0x01] + Self.stored.dropFirst(2), 7)
        }
        #expect(throws: InflateError.self) { try inflate([0x78, 0x02] + Self.stored.dropFirst(2), 7) }
        #expect(throws: InflateError.self) {
            try inflate([0x78, 0xBB] + Self.stored.dropFirst(2), 7)
        }
        var badAdler = Self.stored
        badAdler[badAdler.count - 1] ^= 1
        #expect(throws: InflateError.corrupt("incorrect data check")) { try inflate(badAdler, 7) }
        #expect(throws: InflateError.trailingBytes(1)) { try inflate(Self.stored + [0], 7) }
        #expect(throws: InflateError.outputTooLarge(limit: 6)) { try inflate(Self.stored, 6) }
        #expect(throws: InflateError.lengthMismatch(declared: 8, actual: 7)) { try inflate(Self.stored, 8) }
        var badLength = Self.stored
        badLength[5] ^= 1
        #expect(throws: InflateError.corrupt("invalid stored block lengths")) { try inflate(badLength, 7) }
        // Block type 3 is reserved.
        #expect(throws: InflateError.corrupt("invalid block type")) { try inflate([0x78, 0x01, 0x07], 0) }
        // A fixed block whose first code is a distance back into nothing: literal/length 257
        // (code 0000001, 7 bits) then distance code 0 (5 bits) — output is empty.
        #expect(throws: InflateError.corrupt("invalid distance too far back")) {
            try inflate([0x78, 0x01, 0x03, 0x02, 0x00], 10)
        }
        for length in 0..<Self.dynamic.count {
            #expect(throws: InflateError.self, "cut at \(length)") {
                try inflate(Array(Self.dynamic[0..<length]), Self.dynamicText.count)
            }
        }
    }

    @Test("random damage never traps and never overruns the declared size")
    func randomDamage() {
        var rng = SplitMix64(seed: 3)
        var refused = 0
        for _ in 0..<2000 {
            var damaged = Self.dynamic
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                damaged[Int.random(in: 2..<damaged.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            do {
                let out = try inflate(damaged, Self.dynamicText.count)
                #expect(out.count == Self.dynamicText.count)
            } catch {
                refused += 1
            }
        }
        #expect(refused > 1900)
    }
}
