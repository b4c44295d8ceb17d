import ArgumentParser
import Foundation
import PoolProtocol

enum ProdConsPrinting: JobKindPrinting {
    static var command: any ParsableCommand.Type { ProdConsCommand.self }

    static func lines(_ result: ProdConsResult) -> [String] {
        var lines = [
            "  produced \(result.produced) items (sum \(result.producedSum)), consumed \(result.consumed) (sum \(result.consumedSum)): \(result.checksumVerdict)",
            "  \(Output.duration(result.durationSeconds)), \(Output.rate(result.itemsPerSecond)) items/s; queue found full \(result.queueFull) times, empty \(result.queueEmpty) times",
        ]
        if result.redelivered + result.resent > 0 {
            lines.append("  recovered from dead workers: \(result.redelivered) items redelivered from a consumer's ledger, \(result.resent) sent again for a producer")
        }
        let latency = result.latencyMicros
        let percentiles = [("p50", latency.p50), ("p90", latency.p90), ("p99", latency.p99)]
            .map { "\($0) \(String(format: "%.1f", $1))us" }.joined(separator: ", ")
        lines.append("  enqueue-to-dequeue latency: " + percentiles + String(format: " (to %g%%)", latency.percentileResolution * 100)
                     + String(format: ", max %.1fus (exact)", latency.max))
        if let occupancy = result.occupancy, !occupancy.samples.isEmpty {
            let capacity = Double(max(occupancy.capacity, 1))
            lines.append("  queue occupancy: " + sparkline(occupancy.samples.map { $0 / capacity }))
        }
        lines += result.producers.map { "  producer on slot \($0.slot): produced \($0.produced), sum \($0.sum)" }
        lines += result.consumers.map { "  consumer on slot \($0.slot): consumed \($0.consumed), sum \($0.sum)" }
        return lines
    }

    static func liveFigures(_ progress: JobProgress, parameters: JSONValue) -> [String] {
        guard let depth = progress.queueDepth else { return [] }
        let capacity = (try? parameters.decode(ProdConsParameters.self)).map { "/\($0.capacity)" } ?? ""
        return ["queue \(depth)" + capacity]
    }

    /// Values in 0...1 as a line of block characters.
    static func sparkline(_ values: [Double]) -> String {
        let blocks = Array("▁▂▃▄▅▆▇█")
        let step = max(1, values.count / 60)
        return String(stride(from: 0, to: values.count, by: step).map { index in
            let level = values[index] * Double(blocks.count - 1) + 0.5
            return blocks[level.isFinite ? Int(min(max(level, 0), Double(blocks.count - 1))) : 0]
        })
    }
}
