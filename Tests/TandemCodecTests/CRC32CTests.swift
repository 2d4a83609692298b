import CTandemShims
import SeededRandom
import Testing

@Suite("CRC32C")
struct CRC32CTests {
    static func hardware(_ b: [UInt8], _ crc: UInt32 = 0) -> UInt32 {
        b.withUnsafeBytes { tandem_crc32c(crc, $0.baseAddress, $0.count) }
    }
    static func software(_ b: [UInt8], _ crc: UInt32 = 0) -> UInt32 {
        b.withUnsafeBytes { tandem_crc32c_software(crc, $0.baseAddress, $0.count) }
    }

    /// RFC 3720 (iSCSI), appendix B.4, plus the customary check value.
    static let vectors: [(String, [UInt8], UInt32)] = [
        ("32 zero bytes", [UInt8](repeating: 0, count: 32), 0x8A91_36AA),
        ("32 0xFF bytes", [UInt8](repeating: 0xFF, count: 32), 0x62A8_AB43),
        ("bytes 0...31 ascending", Array(0...31), 0x46DD_794E),
        ("bytes 31...0 descending", Array((0...31).reversed()), 0x113F_DB5C),
        ("\"123456789\"", Array("123456789".utf8), 0xE306_9283),
        ("empty", [], 0),
    ]

    @Test("RFC 3720 vectors: hardware path, software path, bitwise reference")
    func vectors() {
        for (name, bytes, expected) in Self.vectors {
            #expect(Self.hardware(bytes) == expected, "\(name) (tandem_crc32c)")
            #expect(Self.software(bytes) == expected, "\(name) (tandem_crc32c_software)")
            #expect(crc32cReference(bytes) == expected, "\(name) (test reference)")
        }
    }

    @Test("hardware and software paths agree on random buffers, lengths and alignments")
    func agreement() {
        var rng = SplitMix64(seed: 0xC4C3_2C00)
        let pool = rng.bytes(4200)
        for i in 0..<3000 {
            // Every length 0...64 (tail handling), then random ones; every start offset mod 8.
            let length = i < 520 ? i / 8 : Int.random(in: 0...4096, using: &rng)
            let offset = i % 8
            let slice = Array(pool[offset..<(offset + length)])
            let seed = i % 3 == 0 ? 0 : UInt32.random(in: 0...UInt32.max, using: &rng)
            let hw = Self.hardware(slice, seed), sw = Self.software(slice, seed)
            #expect(hw == sw, "length \(length), offset \(offset), seed \(seed)")
            if i % 50 == 0 { #expect(hw == crc32cReference(slice, continuing: seed), "length \(length)") }
        }
    }

    @Test("a CRC continues across split buffers")
    func continuation() {
        var rng = SplitMix64(seed: 5)
        for _ in 0..<200 {
            let bytes = (0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let cut = Int.random(in: 0...bytes.count, using: &rng)
            let whole = Self.hardware(bytes)
            #expect(Self.hardware(Array(bytes[cut...]), Self.hardware(Array(bytes[..<cut]))) == whole)
            #expect(Self.software(Array(bytes[cut...]), Self.software(Array(bytes[..<cut]))) == whole)
        }
    }

    @Test("every single-bit error changes the CRC")
    func singleBitErrors() {
        var rng = SplitMix64(seed: 9)
        let bytes = (0..<256).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let good = Self.hardware(bytes)
        for bit in 0..<(bytes.count * 8) {
            var b = bytes
            b[bit / 8] ^= 1 << UInt8(bit % 8)
            #expect(Self.hardware(b) != good, "bit \(bit)")
        }
    }
}
