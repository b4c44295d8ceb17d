import Foundation
import PoolProtocol
import Testing

/// `make demo` as a new user runs it, in a namespace of its own (Scripts/demo-namespace.py): with
/// a real journald, where poold logs to the journal, and without one; as root and as nobody.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct DemoScriptTests {
    private func runDemo(journald: Bool, user: String) throws -> JSONValue {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        let script = here.appendingPathComponent("Scripts/demo-namespace.py").path
        let demo = here.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("scripts/demo.sh").path
        let run = try runProgram("/usr/bin/unshare", ["--ipc", "--mount", "--propagation", "private", "python3", script, demo,
                                                      Binaries.directory, directory.path, journald ? "journald" : "none", user])
        #expect(run.status == 0, "\(run.stderr)")
        let data = try Data(contentsOf: URL(fileURLWithPath: directory.path + "/result.json"))
        return try JSONDecoder().decode(JSONValue.self, from: data)
    }

    /// What every run of the demo shows, step by step, in the notebook's order.
    private func expectTheNotebooksSteps(_ result: JSONValue) {
        let stdout = result["stdout"]?.stringValue ?? ""
        #expect(result["timedOut"] == .bool(false), "the demo ran over two minutes:\n\(stdout)")
        #expect(result["exit"]?.intValue == 0, "\(stdout)\n\(result["stderr"]?.stringValue ?? "")")
        #expect(!stdout.contains("did not answer") && !stdout.contains("exited before"), "\(stdout)")
        let markers = ["I'm the task 9", "received event True", "Acquired lock", "Counter: 4", "own copy",
                       "shared string", "mode unsafe", "mode locked", "mode atomic", "Produced", "poold is shutting down"]
        var position = stdout.startIndex
        for marker in markers {
            guard let found = stdout.range(of: marker, range: position..<stdout.endIndex) else {
                Issue.record("'\(marker)' missing, or out of the notebook's order:\n\(stdout)")
                return
            }
            position = found.upperBound
        }
        let taskSlots = Set(stdout.matches(of: /I'm the task \d+ \(slot (\d+)/).map { $0.1 })
        #expect(taskSlots.count == 4, "tasks ran on every worker: \(taskSlots)")
        #expect(stdout.contains(/timeout waiter on slot \d+: received event True, [1-9]\d* timeouts/), "the timeout fired once: \(stdout)")
        #expect(stdout.matches(of: /counter = 9 \(expected 9, start 10, mode (locked|atomic)\)/).count == 2, "\(stdout)")
        #expect(stdout.contains("(queue length = 10)"), "the slow consumer's queue filled up: \(stdout)")
        #expect(result["leftInShm"] == .array([]) && result["leftInMqueue"] == .array([]), "nothing left behind: \(result)")
    }

    @Test func theDemoRunsWhereJournaldTakesTheLogsAsRoot() throws {
        let result = try runDemo(journald: true, user: "root")
        expectTheNotebooksSteps(result)
        guard case .array(let records)? = result["journalLockcell"] else { Issue.record("no journal: \(result)"); return }
        let messages = records.compactMap { $0["MESSAGE"]?.stringValue }
        #expect(messages.filter { $0.hasSuffix(": Acquired lock") }.count == 4 && messages.contains { $0.hasSuffix("Counter: 4") },
                "the Counter cell's lines are in the journal: \(messages)")
    }

    @Test func theDemoRunsWithoutJournaldAsAnotherUser() throws {
        expectTheNotebooksSteps(try runDemo(journald: false, user: "nobody"))
    }
}
