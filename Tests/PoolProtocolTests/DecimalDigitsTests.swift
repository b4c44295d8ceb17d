import PoolProtocol
import Testing

/// `appendDecimal` writes what `String(value)` writes, zero-padded to a width when asked.
struct DecimalDigitsTests {
    private func text(_ body: (inout [UInt8]) -> Void) -> String {
        var bytes: [UInt8] = Array("x=".utf8)
        body(&bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test func integersAsStringWritesThem() {
        let values: [Int64] = [0, 1, -1, 9, 10, 99, 100, 1_000_007, -2_147_483_648, .max, .min]
        for value in values {
            #expect(text { $0.appendDecimal(value) } == "x=\(value)")
        }
        #expect(text { $0.appendDecimal(magnitude: .max) } == "x=\(UInt64.max)")
    }

    @Test func aWidthPadsWithLeadingZerosOnly() {
        #expect(text { $0.appendDecimal(7, width: 3) } == "x=007")
        #expect(text { $0.appendDecimal(2026, width: 4) } == "x=2026")
        #expect(text { $0.appendDecimal(12345, width: 2) } == "x=12345")
        #expect(text { $0.appendDecimal(-5, width: 2) } == "x=-05")
    }
}
