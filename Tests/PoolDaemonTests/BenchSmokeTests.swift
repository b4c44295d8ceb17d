import Foundation
import PoolProtocol
import Testing

/// `make bench` in small: `bench/run --smoke` builds the C references, starts its private daemons,
/// runs every row once at small sizes and writes its JSON. Checks that every row ran and gave
/// numbers (not how fast they are: speed is `make bench`'s) and that nothing was left behind.
@Suite(.serialized, .timeLimit(.minutes(4)))
struct BenchSmokeTests {
    @Test func everyRowOfTheBenchmarkRunsAndGivesNumbers() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let run = try await runOnAThreadOfItsOwn("/usr/bin/env", ["python3", root.appendingPathComponent("bench/run").path, "--smoke",
                                                                  "--bin", Binaries.directory, "--out", directory.path])
        #expect(run.status == 0, "bench/run --smoke failed:\n\(run.stdout)\n\(run.stderr)")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".smoke.json") }
        try #require(files.count == 1, "one JSON report: \(files)\n\(run.stdout)")
        let report = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: URL(fileURLWithPath: directory.path + "/" + files[0])))
        #expect(report["failures"] == .array([]), "\(report["failures"] ?? .null)")
        #expect(report["ipcLeftBehind"] == .array([]), "\(report["ipcLeftBehind"] ?? .null)")
        guard case .array(let rows)? = report["rows"] else { Issue.record("no rows: \(report)"); return }

        // A row may lack its figures only where a reference is not installed (stress-ng).
        let allowedGaps = ["not installed"]
        for row in rows {
            let name = "\(row["group"]?.stringValue ?? "?"): \(row["name"]?.stringValue ?? "?")"
            #expect(row["error"] == nil, "\(name) failed: \(row["error"] ?? .null)")
            if let gap = row["unavailable"]?.stringValue {
                #expect(allowedGaps.contains { gap.hasPrefix($0) }, "\(name) is unavailable: \(gap)")
                continue
            }
            let poold = row["poold"]?.doubleValue ?? -1
            #expect(poold > 0 || (row["unit"]?.stringValue == "% of runs" && poold >= 0), "\(name): poold's figure is \(row["poold"] ?? .null)")
            if row["reference"]?.stringValue != nil {
                let reference = row["referenceValue"]?.doubleValue ?? -1
                #expect(reference > 0 || (row["unit"]?.stringValue == "% of runs" && reference >= 0),
                        "\(name): the reference's figure is \(row["referenceValue"] ?? .null)")
            }
        }

        // Every comparison the benchmark promises is in the table.
        let names = rows.compactMap { row -> String? in
            guard let group = row["group"]?.stringValue, let name = row["name"]?.stringValue else { return nil }
            return group + ": " + name
        }
        let expected = ["POSIX queue, capacity 10: batch 1,", "capacity 10: batch 16,", "capacity 10: batch 128,", "capacity 10: batch 1000,",
                        "shared-memory ring: capacity 10, batch 1, 1x1", "capacity 1024, batch 1, 1x1", "capacity 1024, batch 16, 1x1",
                        "capacity 1024, batch 16, 2x2",
                        "unsafe, N", "locked, N", "atomic, N", "Queue(10) cell, polling", "blocking put/get",
                        "Manager Value and Lock cell", "POSIX queue, capacity 10, ", "Run tasks --count 1, p50",
                        "Run tasks --count 1, p99", "Run tasks --count 1, context switches", "under a service manager, p50",
                        "every job logged (--job-log-rate 0), p50", "Status, p50",
                        "SwiftNIO echo (not poold: bench/nio-echo), one CPU, p50",
                        "runs of", "daemon RSS, 4 idle workers",
                        "a worker's RSS (median), 64 workers after a job"]
        for part in expected {
            #expect(names.contains { $0.contains(part) }, "no row for '\(part)' in \(names)")
        }
    }

    /// The smoke run takes seconds to minutes: waited for on a thread of its own, not on one of
    /// the few threads the other suites' tests run on (2 on this machine), which it would hold.
    private func runOnAThreadOfItsOwn(_ path: String, _ arguments: [String]) async throws -> CommandResult {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try runProgram(path, arguments) }) }.start()
        }
    }
}
