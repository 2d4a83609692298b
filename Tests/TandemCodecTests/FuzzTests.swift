import SeededRandom
import TandemCodec
import TandemCore
import Testing

/// Deterministic fuzzing: fixed seeds and bounded counts, so a failure reproduces
/// exactly and the suite stays fast. A crash, a trap or a hang fails the run.
@Suite("Fuzz", .timeLimit(.minutes(2)))
struct FuzzTests {
    @Test("random byte strings are always refused")
    func randomGarbage() {
        var rng = SplitMix64(seed: 0x7A4D_E0B1)
        let decoder = makeDecoder()
        var refusedWithBadMagic = 0
        for i in 0..<20_000 {
            let length = Int.random(in: 0...512, using: &rng)
            var bytes = rng.bytes(length)
            // A quarter start like a frame, so the length and checksum checks see them.
            if i % 4 == 0, bytes.count >= 20 {
                bytes.replaceSubrange(0..<8, with: Array("TNDB".utf8) + [1, 0, UInt8(i % 3), 0])
            }
            guard let error = decodeFailure(bytes, decoder) else {
                Issue.record("random string #\(i) of \(length) bytes was accepted: \(bytes)")
                continue
            }
            if error == .badMagic { refusedWithBadMagic += 1 }
            #expect(headerFailure(bytes, decoder) != nil, "random string #\(i)")
        }
        #expect(refusedWithBadMagic > 10_000)
    }

    /// Random headers and bodies inside a well-formed, correctly checksummed
    /// envelope: everything past the CRC check sees arbitrary bytes.
    @Test("random content in a valid envelope is always refused")
    func randomContentValidEnvelope() {
        var rng = SplitMix64(seed: 0xC0FF_EE00)
        let decoder = makeDecoder()
        for i in 0..<5_000 {
            let header = rng.bytes(Int.random(in: 0...80, using: &rng))
            let body = rng.bytes(Int.random(in: 0...400, using: &rng))
            let frame = assembleFrame(header: header, body: body, compression: UInt8(i % 2))
            #expect(decodeFailure(frame, decoder) != nil, "envelope #\(i) was accepted")
        }
    }

    /// Structured mutations of valid batches, re-sealed (uncompressed size fixed
    /// up, recompressed, new CRC) so that the inner decoder is what gets tested.
    ///
    /// A mutation can produce another valid frame (a changed character inside a
    /// text value), so the property is: refused with a `BatchCodecError`, or, if
    /// accepted, the result is a batch the encoder can write again and that
    /// decodes back to itself, with a header that agrees with it.
    @Test("mutated frames with a recomputed CRC are refused or decode to a self-consistent batch")
    func mutations() throws {
        var rng = SplitMix64(seed: 0x5EED_0005)
        let decoder = makeDecoder()
        let reencoder = makeEncoder(.none)
        var seeds: [(Batch, EncodedBatch)] = []
        for i in 0..<40 {
            let batch = Arb.batch(&rng, maxTransactions: 3, maxChanges: 3)
            seeds.append((batch, try makeEncoder(i % 2 == 0 ? .none : .zstd).encode(batch)))
        }
        var refused = 0, accepted = 0
        for i in 0..<5_000 {
            let (batch, encoded) = seeds[Int.random(in: 0..<seeds.count, using: &rng)]
            var body = Wire { $0.body(batch) }.bytes
            var header = encoded.header
            let mutateHeader = i % 5 == 0
            var headerBytes = Wire { $0.header(header) }.bytes
            if mutateHeader { mutate(&headerBytes, &rng) } else { mutate(&body, &rng) }
            if !mutateHeader && Int.random(in: 0..<4, using: &rng) != 0 {
                header.uncompressedSize = UInt32(body.count)  // usually get past the size check
                headerBytes = Wire { $0.header(header) }.bytes
            }
            let zstd = encoded.header.compression == .zstd
            let frame = assembleFrame(
                header: headerBytes, body: zstd ? zstdCompress(body) : body, compression: zstd ? 1 : 0)
            do {
                let decoded = try decoder.decode(frame)
                accepted += 1
                let again = try reencoder.encode(decoded)
                #expect(
                    try decoder.decode(again.frame) == decoded, "mutation #\(i): accepted batch does not round-trip")
                let h = try decoder.decodeHeader(frame)
                #expect(
                    h.stream == decoded.stream && h.sequence == decoded.sequence
                        && Int(h.transactionCount) == decoded.transactions.count
                        && h.rowCount == UInt64(decoded.rowCount)
                        && h.firstPosition == decoded.transactions.first?.commitPosition
                        && h.lastPosition == decoded.transactions.last?.commitPosition,
                    "mutation #\(i): accepted header disagrees with its body")
            } catch {
                refused += 1
            }
        }
        #expect(refused > accepted * 4, "mutations mostly should be refused: \(refused) refused, \(accepted) accepted")
    }

    /// Applies one structural mutation.
    private func mutate(_ bytes: inout [UInt8], _ rng: inout SplitMix64) {
        let interesting: [UInt8] = [0x00, 0x01, 0x02, 0x03, 0x13, 0x14, 0x15, 0x16, 0x7F, 0x80, 0xC0, 0xFE, 0xFF]
        let at = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &rng)
        switch Int.random(in: 0..<9, using: &rng) {
        case 0 where !bytes.isEmpty: bytes[at] ^= 1 << UInt8.random(in: 0...7, using: &rng)
        case 1 where !bytes.isEmpty: bytes[at] = UInt8.random(in: 0...255, using: &rng)
        case 2 where !bytes.isEmpty: bytes[at] = interesting[Int.random(in: 0..<interesting.count, using: &rng)]
        case 3: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: at)
        case 4 where !bytes.isEmpty: bytes.remove(at: at)
        case 5: bytes.removeSubrange(min(at, bytes.count)...)  // truncate
        case 6:  // splice in an absurd varint
            bytes.insert(
                contentsOf: Wire { $0.varint(UInt64(1) << UInt64.random(in: 20...63, using: &rng)) }.bytes, at: at)
        case 7 where bytes.count > 2:  // duplicate a slice
            let end = min(bytes.count, at + Int.random(in: 1...16, using: &rng))
            bytes.insert(contentsOf: bytes[at..<end], at: end)
        default:  // overwrite with continuation bytes (endless varint)
            for j in at..<min(bytes.count, at + 12) { bytes[j] = 0x80 }
        }
    }
}
