import Foundation
import PoolDaemon
import PoolProtocol
import Testing

/// The `--config` file: any option as `option = value`, the command line winning, bad values
/// refused as the option would be, with the file's line named.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct ConfigurationFileTests {
    private func file(_ text: String) throws -> (TemporaryDirectory, String) {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/poold.conf"
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        return (directory, path)
    }

    private func listedJobs(_ daemon: DaemonHarness) throws -> [Int] {
        try daemon.client().call(PoolInterface.Method.listJobs.qualifiedName, ListJobsRequest(limit: 100),
                                 returning: ListJobsReply.self).jobs.map(\.id)
    }

    @Test func anOptionComesFromTheFileUnlessTheCommandLineSetsIt() throws {
        let (directory, path) = try file("# the newest job only\nhistory-limit = 1\nmax-queued-jobs = 7\n")
        defer { directory.remove() }
        let fromFile = try DaemonHarness.start(workers: 1, arguments: ["--config", path])
        defer { try? fromFile.stop() }
        for _ in 0..<3 { #expect(try fromFile.poolctl("run", "tasks", "--count", "1").status == 0) }
        #expect(try listedJobs(fromFile) == [3], "history-limit = 1 from the file")
        try fromFile.stop()

        let overridden = try DaemonHarness.start(workers: 1, arguments: ["--config", path, "--history-limit=2"])
        defer { try? overridden.stop() }
        for _ in 0..<3 { #expect(try overridden.poolctl("run", "tasks", "--count", "1").status == 0) }
        #expect(try listedJobs(overridden) == [3, 2], "--history-limit=2 on the command line wins")
        try overridden.stop()
    }

    @Test func aBadValueInTheFileIsRefusedLikeTheOptionNamingTheLine() throws {
        let (directory, path) = try file("workers = 2\nhistory-limit = 0\n")
        defer { directory.remove() }
        let result = try runProgram(Binaries.poold, ["--config", path, "--socket", directory.path + "/p.sock"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("--history-limit must be at least 1, not 0"), "\(result.stderr)")
        #expect(result.stderr.contains("note: from \(path): workers = 2 (line 1), history-limit = 0 (line 2)"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: directory.path + "/p.sock"))
    }

    @Test func anUnknownKeyOrAMissingFileStopsTheStartWithTheReason() throws {
        let (directory, path) = try file("workers = 2\npool-size = 3\n")
        defer { directory.remove() }
        let unknown = try runProgram(Binaries.poold, ["--config", path, "--socket", directory.path + "/p.sock"])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("\(path):2: unknown key `pool-size` (known: socket, workers,"), "\(unknown.stderr)")
        let missing = try runProgram(Binaries.poold, ["--config", directory.path + "/nonexistent.conf"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("cannot read \(directory.path)/nonexistent.conf: No such file or directory"), "\(missing.stderr)")
    }

    @Test func aLeadingDashMakesAMissingFileNoErrorAndAPresentOneStillRead() throws {
        // poold.service runs `--config=-/etc/poold.conf`: the service starts without the file.
        let (directory, path) = try file("history-limit = 1\n")
        defer { directory.remove() }
        let missing = try DaemonHarness.start(workers: 1, arguments: ["--config=-" + directory.path + "/nonexistent.conf"])
        defer { try? missing.stop() }
        #expect(try missing.status().poolSize == 1)
        try missing.stop()

        let present = try DaemonHarness.start(workers: 1, arguments: ["--config=-" + path])
        defer { try? present.stop() }
        for _ in 0..<2 { #expect(try present.poolctl("run", "tasks", "--count", "1").status == 0) }
        #expect(try listedJobs(present) == [2], "history-limit = 1 from the file")
        try present.stop()
    }

    @Test func everyKeyIsAnOptionOfPoold() throws {
        let help = try runProgram(Binaries.poold, ["--help"])
        #expect(help.status == 0)
        for key in ConfigurationFile.keys {
            #expect(help.stdout.contains("--\(key) "), "`\(key)` is accepted in the file but poold has no --\(key)")
        }
    }
}
