import NIOCore
import PoolDaemon
import PropertyBased
import Testing

/// The frame splitter against a model: arbitrary byte streams (messages of any length, with or
/// without their terminator, some over the size limit) cut into arbitrary chunks, as reads deliver
/// them. It must yield exactly the model's messages, in order, and refuse an oversized message as
/// soon as more than the limit of it has arrived: never later, never by buffering it whole.
@Suite struct VarlinkFramingFuzzTests {
    static let limit = 64

    struct Stream: Sendable, CustomStringConvertible {
        var bytes: [UInt8]
        /// Chunk lengths, in order; together they cover `bytes`.
        var chunks: [Int]

        var description: String { "\(bytes.count) bytes in chunks \(chunks)" }
    }

    static let streams = Generator<Stream, Shrink.None<Stream>> { rng in
        var bytes: [UInt8] = []
        for _ in 0..<RandomInput.int(0...8, &rng) {
            // Mostly small messages; now and then one over the limit, or exactly at it.
            let length: Int
            switch RandomInput.int(0...9, &rng) {
            case 0: length = RandomInput.int((limit + 1)...(limit * 4), &rng)
            case 1: length = limit
            default: length = RandomInput.int(0...(limit - 1), &rng)
            }
            bytes += (0..<length).map { _ in UInt8(RandomInput.int(1...255, &rng)) }
            // The last message may stay unterminated (a partial message at the end of the stream).
            bytes.append(0)
        }
        if RandomInput.int(0...1, &rng) == 1, !bytes.isEmpty { bytes.removeLast() }
        var chunks: [Int] = []
        var covered = 0
        while covered < bytes.count {
            let chunk = min(bytes.count - covered, RandomInput.int(1...(limit * 2), &rng))
            chunks.append(chunk)
            covered += chunk
        }
        return Stream(bytes: bytes, chunks: chunks)
    }

    @Test func theSplitterMatchesTheModelForAnyStreamAndAnyChunking() async {
        await propertyCheck(count: FuzzBudget.iterations(default: 2000), input: Self.streams) { stream in
            // The model: messages are the NUL-separated pieces; the first one over the limit (even
            // if unterminated) ends the stream with an error.
            var expected: [[UInt8]] = []
            var oversizedStart: Int?
            var start = 0
            for (index, byte) in stream.bytes.enumerated() where byte == 0 {
                if index - start > Self.limit { oversizedStart = start; break }
                expected.append(Array(stream.bytes[start..<index]))
                start = index + 1
            }
            if oversizedStart == nil, stream.bytes.count - start > Self.limit { oversizedStart = start }

            var splitter = VarlinkFrameSplitter(maxMessageSize: Self.limit)
            var buffer = ByteBuffer()
            var received: [[UInt8]] = []
            var offset = 0
            var refusedAt: Int?
            reading: for chunk in stream.chunks {
                buffer.writeBytes(stream.bytes[offset..<(offset + chunk)])
                offset += chunk
                do throws(VarlinkFrameSplitter.MessageTooLarge) {
                    while let message = try splitter.next(from: &buffer) {
                        received.append(Array(message.readableBytesView))
                    }
                } catch {
                    #expect(error.limit == Self.limit)
                    refusedAt = offset
                    break reading
                }
            }
            #expect(received == expected, "\(stream)")
            if let oversizedStart {
                let refusedAt = try #require(refusedAt, "an oversized message was not refused: \(stream)")
                // Refused once more than the limit of it had arrived, within the chunk that did it.
                #expect(refusedAt - oversizedStart > Self.limit, "\(stream)")
                #expect(refusedAt - oversizedStart <= Self.limit + Self.limit * 2, "\(stream)")
            } else {
                #expect(refusedAt == nil, "refused a stream with no oversized message: \(stream)")
                // What remains buffered is the unterminated tail, never more than the limit.
                #expect(buffer.readableBytes == stream.bytes.count - start)
            }
        }
    }
}
