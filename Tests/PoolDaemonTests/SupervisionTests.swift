import Foundation
import PoolProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized, .timeLimit(.minutes(3)))
struct SupervisionTests {
    @Test func aKilledWorkerIsRespawnedAndThePoolRecovers() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let before = try daemon.status()
        let victim = try #require(before.workers.first { $0.slot == 0 })
        #expect(kill(Int32(victim.pid), SIGKILL) == 0)

        let after = try daemon.waitForStatus { status in
            status.workers.count == 2 && status.workers.allSatisfy { $0.state == .ready }
                && status.workers.first { $0.slot == 0 }!.pid != victim.pid
        }
        let slot0 = try #require(after.workers.first { $0.slot == 0 })
        #expect(slot0.restarts == 1)
        #expect(slot0.lastExit?.contains("signal 9") == true, "\(String(describing: slot0.lastExit))")
        // And the respawned worker does real work.
        let run = try daemon.poolctl("run", "counter", "--mode", "atomic", "--iterations", "1000")
        #expect(run.status == 0, "\(run.stderr)")
        try daemon.stop()
    }

    @Test func resizeGrowsAndShrinksThePool() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let grow = try daemon.poolctl("pool", "resize", "4")
        #expect(grow.status == 0, "\(grow.stderr)")
        let grown = try daemon.waitForStatus { $0.workers.count == 4 && $0.workers.allSatisfy { $0.state == .ready } }
        #expect(grown.poolSize == 4)

        let shrink = try daemon.poolctl("--json", "pool", "resize", "1")
        #expect(shrink.status == 0, "\(shrink.stderr)")
        let shrunk = try daemon.waitForStatus { $0.workers.count == 1 && $0.workers[0].state == .ready }
        #expect(shrunk.poolSize == 1 && shrunk.workers[0].slot == 0)
        for removed in grown.workers where removed.slot > 0 {
            #expect(kill(Int32(removed.pid), 0) == -1, "worker \(removed.pid) of a removed slot still runs")
        }
        #expect(IPCObjects.named(withPrefix: daemon.prefix + ".slot1").isEmpty, "a removed slot's queue is unlinked")

        let bad = try daemon.poolctl("pool", "resize", "0")
        #expect(bad.status == 4 && bad.stderr.contains("workers"), "\(bad.stderr)")
        try daemon.stop()
    }
}

/// A worker that dies while a debugger or strace traces it stays the tracer's to collect first
/// (its parent cannot reap it until then): the daemon must not wait for that.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct TracedWorkerTests {
    @Test func aWorkerKilledWhileTracedIsReplacedItsJobCancellableAndReapedOnceTheTracerLetsGo() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let request = RunRequest(kind: "counter", parameters: .object(["mode": .string("locked"), "iterations": .number(10_000_000_000)]),
                                 detach: true)
        let id = try daemon.client().call(PoolInterface.Method.run.qualifiedName, request, returning: JobReply.self).job.id
        try daemon.waitForProgress(job: id, atLeast: 1)
        let victim = try #require(try daemon.status().workers.first { $0.job == id })
        let tracer = try Tracer(pid: Int32(victim.pid))
        defer { tracer.release() }
        #expect(kill(Int32(victim.pid), SIGKILL) == 0)

        // The slot gets a new worker, which takes the dead one's part over, while the tracer
        // still holds the dead one.
        let after = try daemon.waitForStatus { status in
            guard let slot = status.workers.first(where: { $0.slot == victim.slot }) else { return false }
            return slot.pid != 0 && slot.pid != victim.pid && slot.state == .busy
        }
        #expect(after.workers.first { $0.slot == victim.slot }?.lastExit?.contains("traced by pid \(tracer.pid)") == true,
                "\(after.workers)")
        #expect(Tracer.isTracedZombie(Int32(victim.pid), by: tracer.pid), "the dead worker is still the tracer's")
        #expect(try daemon.poolctl("cancel", "\(id)").status == 0)
        let job = try daemon.waitForJob(id)
        #expect(job.state == .cancelled, "\(job.error ?? "")")
        let dead = try #require(job.result?["deadWorkers"])
        #expect("\(dead)".contains("\(victim.pid)"), "\(dead)")

        // Once the tracer collects it, the kernel tells the daemon (SIGCHLD), which reaps it.
        #expect(tracer.release().contains("collected \(victim.pid)"))
        try daemon.stop()
        #expect(daemon.log.contains("reaped a worker that died while traced"), "\(daemon.log.suffix(2000))")
        #expect(kill(Int32(victim.pid), 0) == -1 && errno == ESRCH)
    }

    @Test func theDaemonStopsWhileATracerStillHoldsADeadWorker() throws {
        let daemon = try DaemonHarness.start(workers: 1)
        defer { try? daemon.stop() }
        let victim = try #require(try daemon.status().workers.first)
        let tracer = try Tracer(pid: Int32(victim.pid))
        defer { tracer.release() }
        #expect(kill(Int32(victim.pid), SIGKILL) == 0)
        try daemon.waitForStatus { $0.workers.first.map { $0.pid != 0 && $0.pid != victim.pid && $0.state == .ready } ?? false }
        #expect(Tracer.isTracedZombie(Int32(victim.pid), by: tracer.pid))
        // SIGTERM completes: exit status 0, nothing left behind (checked by stop).
        try daemon.stop()
        #expect(tracer.release().contains("collected \(victim.pid)"))
    }
}

/// `Scripts/ptrace-hold.py`: PTRACE_SEIZEs a process, and collects it when it dies only once
/// released.
final class Tracer {
    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private var released: String?

    var pid: Int32 { process.processIdentifier }

    /// Returns once the process is traced.
    init(pid target: Int32) throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Scripts/ptrace-hold.py").path
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, "\(target)"]
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        let first = output.fileHandleForReading.readLine()
        guard first == "seized" else {
            release()
            throw HarnessError(description: "the tracer could not seize \(target): \(first ?? "no output")")
        }
    }

    /// Lets the tracer collect the dead process and waits for it to exit; returns what it printed.
    @discardableResult
    func release() -> String {
        if let released { return released }
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        released = text
        return text
    }

    /// Whether `pid` is a zombie whose tracer is `tracer` (from /proc/PID/status).
    static func isTracedZombie(_ pid: Int32, by tracer: Int32) -> Bool {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return false }
        let lines = status.split(separator: "\n")
        return lines.contains { $0.hasPrefix("State:") && $0.contains("Z") } && lines.contains("TracerPid:\t\(tracer)")
    }
}

extension FileHandle {
    /// One line, read a byte at a time (so nothing after it is consumed); nil at end of file.
    func readLine() -> String? {
        var bytes: [UInt8] = []
        while true {
            let byte = readData(ofLength: 1)
            guard let first = byte.first else { return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self) }
            if first == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(first)
        }
    }
}
