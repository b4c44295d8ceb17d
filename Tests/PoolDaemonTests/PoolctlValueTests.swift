import Foundation
import PoolProtocol
import Testing

/// One rule for values: what poolctl can check itself is a usage error (exit 2) naming the option;
/// what depends on the pool or the machine the daemon refuses (exit 4), shown with poolctl's
/// option names and limits stated from the pool as it is. Negative numbers are values.
@Suite(.timeLimit(.minutes(2)))
struct PoolctlValueTests {
    @Test func whatPoolctlCanCheckIsAUsageErrorNamingTheOption() throws {
        let cases: [([String], String)] = [
            (["run", "counter", "--iterations", "-1"], "--iterations must be at least 0, not -1"),
            (["run", "counter", "--workers", "0"], "--workers must be at least 1, not 0"),
            (["run", "prodcons", "--consume-delay", "5"], "--consume-delay must be a duration or a range"),
            (["run", "prodcons", "--produce-delay", "5..3s"], "'5..3s' is reversed"),
            (["run", "event", "--set-after", "soon"], "--set-after must be a duration"),
            (["run", "tasks", "--count", "-3"], "--count must be at least 1, not -3"),
            (["run", "counter", "--timeout", "5"], "--timeout must be a positive duration"),
            (["jobs", "--limit", "0"], "--limit must be at least 1"),
            (["logs", "-n", "-2"], "-n/--lines must be 0 or more, not -2"),
            (["run", "frobnicate"], "unknown job kind 'frobnicate'; the kinds are counter, prodcons, event, tasks, append, lockcell"),
        ]
        for (arguments, message) in cases {
            // No daemon at the socket: a usage error is found before poolctl tries to connect.
            let result = try runProgram(Binaries.poolctl, ["--socket", "/nonexistent/p.sock"] + arguments)
            #expect(result.status == 2 && result.stderr.contains(message), "\(arguments): \(result.status) \(result.stderr)")
        }
    }

    @Test func negativeNumbersAreValuesWhereTheyMakeSense() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let run = try daemon.poolctl("--json", "run", "counter", "--mode", "locked", "--iterations", "1000", "--start", "-5")
        #expect(run.status == 0, "\(run.stderr)")
        let result = try #require(try run.json(JobRecord.self).result?.decode(CounterResult.self))
        #expect(result.start == -5 && result.actual == -6)
        try daemon.stop()
    }

    @Test func whatTheDaemonRefusesIsShownWithTheOptionsNamesAndThePoolAsItIs() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let deep = try daemon.poolctl("run", "prodcons", "--capacity", "5000")
        #expect(deep.status == 4 && deep.stderr.contains("refused: --capacity: "), "\(deep.stderr)")
        // The event's `timeout` parameter is its --wait-timeout (--timeout is the whole job's).
        let long = try daemon.poolctl("run", "event", "--wait-timeout", "120m")
        #expect(long.status == 4 && long.stderr.contains("refused: --wait-timeout: "), "\(long.stderr)")
        let big = try daemon.poolctl("run", "counter", "--workers", "99999")
        #expect(big.status == 4, "\(big.stderr)")
        #expect(big.stderr.contains("asks for 99999 workers but the pool has 2") && !big.stderr.contains("4096"), "\(big.stderr)")
        #expect(big.stderr.contains("it can grow to"), "no advice to resize beyond what the pool may grow to: \(big.stderr)")
        let four = try daemon.poolctl("run", "counter", "--workers", "4")
        #expect(four.status == 4 && four.stderr.contains("`poolctl pool resize 4`"), "\(four.stderr)")
        try daemon.stop()
    }

    @Test func everyCommandsHelpShowsAnExample() throws {
        let commands = [[], ["status"], ["run"], ["run", "counter"], ["run", "prodcons"], ["run", "event"], ["run", "tasks"],
                        ["run", "append"], ["run", "lockcell"], ["jobs"], ["job"], ["cancel"], ["pool"], ["pool", "resize"],
                        ["pool", "restart"], ["reload"], ["shutdown"], ["logs"]]
        for command in commands {
            let help = try runProgram(Binaries.poolctl, command + ["--help"])
            #expect(help.status == 0 && help.stdout.contains("Example"), "poolctl \(command.joined(separator: " ")) --help shows no example")
            #expect(help.stdout.contains("poolctl " + (command.first ?? "")), "\(command)")
        }
    }
}
