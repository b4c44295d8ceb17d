import Foundation
@testable import PoolDaemon
import Testing

/// A record's times are written without Foundation's formatter (`Job.timestamp`): the text must be
/// the formatter's, to the millisecond, so that records read the same as before.
struct JobTimestampTests {
    private let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    @Test func isWhatTheISO8601FormatStyleWrites() {
        var generator = SystemRandomNumberGenerator()
        let now = Date().timeIntervalSinceReferenceDate
        var dates: [Double] = [0, 0.0005, 0.9995, 0.999_999_9, 86_400 - 0.000_1, now.rounded(.down), now.rounded(.down) + 0.999]
        // Around now (a job's times), and anywhere from 2001 to 2300.
        for _ in 0..<20_000 { dates.append(now + Double.random(in: -1e6...1e6, using: &generator)) }
        for _ in 0..<20_000 { dates.append(Double.random(in: 0...9.4e9, using: &generator)) }
        // Just beside the millisecond boundaries, where truncation and rounding part.
        for _ in 0..<20_000 {
            let milliseconds = (now * 1000).rounded(.down) + Double(Int.random(in: -1_000_000...1_000_000, using: &generator))
            dates.append(milliseconds / 1000 + Double.random(in: -1e-6...1e-6, using: &generator))
        }
        for reference in dates {
            let date = Date(timeIntervalSinceReferenceDate: reference)
            #expect(Job.timestamp(date) == date.formatted(style), "\(reference)")
        }
    }

    @Test func datesBefore2001StillGoThroughFoundation() {
        let date = Date(timeIntervalSince1970: 86_400.25)
        #expect(Job.timestamp(date) == date.formatted(style))
    }
}
