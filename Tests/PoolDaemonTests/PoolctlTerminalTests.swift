import Foundation
import PoolProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// poolctl on a terminal, as a person sees it: a real daemon, the real poolctl in a tmux window,
/// the screen read while it runs. Serialized: each test owns a terminal and a long job, and the
/// CPU is shared.
@Suite(.serialized) struct PoolctlTerminalTests {
    /// A counter job that runs for about a minute here (far longer on a busy machine), so that
    /// each test sees its progress move and ends it well before it would end by itself.
    static let longCounter = ["run", "counter", "--mode", "locked", "--iterations", "300000000"]

    /// The live line: a bar of cells, then the percentage.
    static func percentages(_ screen: String) -> [Int] {
        TmuxTerminal.nonEmptyLines(screen).compactMap { line -> Int? in
            guard line.contains("░") || line.contains("█"), let match = line.firstMatch(of: /(\d+)%/) else { return nil }
            return Int(match.1)
        }
    }

    static func jobID(on screen: String) throws -> Int {
        let match = try #require(screen.firstMatch(of: /job (\d+) (queued|running)/), "no job id on the screen:\n\(screen)")
        return Int(match.1)!
    }

    /// Waits until the live line shows more than `percent`, and checks that it is still one line.
    @discardableResult
    static func waitForGrowth(on terminal: TmuxTerminal, beyond percent: Int) throws -> String {
        try terminal.waitForScreen("the percentage to pass \(percent)%") { screen in
            percentages(screen).contains { $0 > percent }
        }
    }

    @Test(.enabled(if: TmuxTerminal.available, "needs tmux (make deps installs it)"))
    func aForegroundRunRedrawsItsProgressInPlaceAndCtrlCCancelsTheJob() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let terminal = try TmuxTerminal([Binaries.poolctl, "--socket", daemon.socketPath] + Self.longCounter)
        defer { terminal.close() }

        let first = try terminal.waitForScreen("a progress bar") { !Self.percentages($0).isEmpty && $0.contains("left") }
        let id = try Self.jobID(on: first)
        let start = try #require(Self.percentages(first).last)
        let later = try Self.waitForGrowth(on: terminal, beyond: start)
        // Redrawn in place: one live line, and the screen has as many lines as before (a line
        // printed per update would scroll it).
        #expect(Self.percentages(later).count == 1, "one progress line:\n\(later)")
        #expect(TmuxTerminal.nonEmptyLines(later).count == TmuxTerminal.nonEmptyLines(first).count, "the screen scrolled:\n\(first)\n---\n\(later)")
        #expect(later.contains("job \(id) running on slots 0, 1") && later.contains("/s") && later.contains("600.00M"), "\(later)")

        try terminal.sendKeys("C-c")
        let end = try terminal.waitForScreen(containing: "job \(id) counter cancelled")
        #expect(try terminal.waitForExit() == 1, "a cancelled job exits 1")
        // The daemon says the job was cancelled, and the screen shows its account: why, and what
        // was done until then.
        #expect(try daemon.jobRecord(id).state == .cancelled)
        #expect(end.contains("cancelling job \(id) (Ctrl-C again to leave without waiting)"), "\(end)")
        #expect(end.contains("why: cancelled by a client") && end.contains("counter = ") && end.contains("lost updates: 0"), "\(end)")
        #expect(Self.percentages(end).isEmpty, "the progress line is gone once the job has ended:\n\(end)")
        try daemon.stop()
    }

    @Test(.enabled(if: TmuxTerminal.available, "needs tmux (make deps installs it)"))
    func aSecondCtrlCLeavesAtOnceWhileTheDaemonHasNotAnswered() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let terminal = try TmuxTerminal([Binaries.poolctl, "--socket", daemon.socketPath] + Self.longCounter)
        defer { terminal.close() }
        let running = try terminal.waitForScreen("a progress bar") { !Self.percentages($0).isEmpty }
        let id = try Self.jobID(on: running)

        // A daemon that does not answer (stopped): the first Ctrl-C's Cancel waits for its reply,
        // and only a second Ctrl-C gets the person out.
        daemon.signal(SIGSTOP)
        var continued = false
        defer { if !continued { daemon.signal(SIGCONT) } }
        try terminal.sendKeys("C-c")
        try terminal.waitForScreen(containing: "cancelling job \(id)")
        #expect(try terminal.exitStatus() == nil, "the first Ctrl-C waits for the job's end")
        try terminal.sendKeys("C-c")
        #expect(try terminal.waitForExit(timeoutSeconds: 10) == 130)
        let screen = try terminal.screen()
        #expect(screen.contains("poolctl: left without waiting; job \(id) is being cancelled"), "\(screen)")

        // The Cancel was sent before poolctl left: once the daemon runs again, the job ends so.
        daemon.signal(SIGCONT)
        continued = true
        #expect(try daemon.waitForJob(id).state == .cancelled)
        try daemon.stop()
    }

    @Test(.enabled(if: TmuxTerminal.available, "needs tmux (make deps installs it)"))
    func statusFollowRedrawsTheWholeTableInPlaceWithTheJobsProgress() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let terminal = try TmuxTerminal([Binaries.poolctl, "--socket", daemon.socketPath, "status", "--follow"], rows: 20)
        defer { terminal.close() }
        try terminal.waitForScreen(containing: "0 running, 0 queued, 0 finished")
        let run = try daemon.poolctl(arguments: Self.longCounter + ["--detach"])
        let id = try #require(Int(run.stdout.split(separator: " ").dropFirst().first ?? ""), "\(run.stdout)")

        let first = try terminal.waitForScreen("the job's progress") { screen in
            screen.contains("PROGRESS") && !Self.percentages(screen).isEmpty && screen.contains("left")
        }
        let later = try Self.waitForGrowth(on: terminal, beyond: try #require(Self.percentages(first).last))
        for screen in [first, later] {
            // One table, from the top of the screen: redrawn over itself, not appended below.
            #expect(screen.components(separatedBy: "pool: 2 workers").count == 2, "\(screen)")
            #expect(screen.hasPrefix("poold "), "\(screen)")
            #expect(screen.contains("\(id)    counter  0,1"), "\(screen)")
        }
        #expect(TmuxTerminal.nonEmptyLines(later).count == TmuxTerminal.nonEmptyLines(first).count, "\(first)\n---\n\(later)")

        #expect(try daemon.poolctl("cancel", "\(id)").status == 0)
        let idle = try terminal.waitForScreen(containing: "0 running, 0 queued, 1 finished")
        #expect(!idle.contains("PROGRESS") && idle.components(separatedBy: "pool: 2 workers").count == 2, "\(idle)")
        try terminal.sendKeys("C-c")
        #expect(try terminal.waitForExit() == 128 + SIGINT)
        try daemon.stop()
    }

    @Test(.enabled(if: TmuxTerminal.available, "needs tmux (make deps installs it)"))
    func colourOnATerminalButNeverWithNoColor() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        for noColor in [false, true] {
            let terminal = try TmuxTerminal([Binaries.poolctl, "--socket", daemon.socketPath] + Self.longCounter,
                                            environment: noColor ? ["NO_COLOR": "1"] : [:])
            defer { terminal.close() }
            // At 4% the bar has a filled cell.
            let screen = try terminal.waitForScreen("a progress bar at 4%", escapes: true) { screen in
                Self.percentages(screen).contains { $0 >= 4 }
            }
            if noColor {
                #expect(!screen.contains("\u{1B}["), "NO_COLOR: no colour or attribute at all:\n\(screen.debugDescription)")
            } else {
                #expect(screen.contains("\u{1B}[32m"), "the bar is green on a terminal:\n\(screen.debugDescription)")
            }
            let id = try Self.jobID(on: screen)
            try terminal.sendKeys("C-c")
            #expect(try daemon.waitForJob(id).state == .cancelled)
            #expect(try terminal.waitForExit() == 1)
        }
        try daemon.stop()
    }

    @Test(.enabled(if: TmuxTerminal.available, "needs tmux (make deps installs it)"))
    func jobFollowShowsTheLiveFiguresOfTheKindAndCtrlCLeavesTheJobRunning() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        // A slow consumer: the producer fills the queue to its capacity and waits there.
        let run = try daemon.poolctl("run", "prodcons", "--detach", "--items", "200", "--produce-delay", "1ms",
                                     "--consume-delay", "100ms")
        let id = try #require(Int(run.stdout.split(separator: " ").dropFirst().first ?? ""), "\(run.stdout)")
        let terminal = try TmuxTerminal([Binaries.poolctl, "--socket", daemon.socketPath, "job", "\(id)", "--follow"])
        defer { terminal.close() }
        let full = try terminal.waitForScreen(containing: "queue 10/10")
        #expect(Self.percentages(full).count == 1, "\(full)")
        try terminal.sendKeys("C-c")
        #expect(try terminal.waitForExit() == 130)
        #expect(try terminal.screen().contains("stopped following job \(id); it goes on"))
        #expect(try daemon.jobRecord(id).state == .running, "following is not owning: the job goes on")
        #expect(try daemon.poolctl("cancel", "\(id)").status == 0)
        try daemon.stop()
    }

    @Test(.enabled(if: TmuxTerminal.available, "needs tmux (make deps installs it)"))
    func quietTurnsTheLiveLineOff() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        // A second or two here: several progress replies, none of them drawn.
        let terminal = try TmuxTerminal([Binaries.poolctl, "--socket", daemon.socketPath, "run", "counter", "--mode", "locked",
                                         "--iterations", "10000000", "--quiet"])
        defer { terminal.close() }
        try terminal.waitForScreen(containing: "running on slots 0, 1")
        var screens: [String] = []
        let deadline = Deadline()
        while try terminal.exitStatus() == nil {
            try deadline.check("waiting for the quiet run to end")
            screens.append(try terminal.screen())
            usleep(20_000)
        }
        #expect(screens.allSatisfy { Self.percentages($0).isEmpty }, "\(screens.first { !Self.percentages($0).isEmpty } ?? "")")
        let end = try terminal.screen()
        #expect(screens.count > 1 && end.contains("counter succeeded"), "\(end)")
        #expect(try terminal.exitStatus() == 0)
        try daemon.stop()
    }

    /// Off a terminal (a pipe) there is no redraw: no carriage return, no escape sequence, the
    /// same lines as before.
    @Test func offATerminalPoolctlWritesPlainLines() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        // Long enough (about half a second here) for several progress replies.
        let piped = try runPiped(Binaries.poolctl, ["--socket", daemon.socketPath, "run", "counter", "--mode", "locked",
                                                    "--iterations", "3000000"])
        #expect(piped.status == 0, "\(piped.output)")
        #expect(!piped.output.contains("\r") && !piped.output.contains("\u{1B}"), "\(piped.output.debugDescription)")
        #expect(piped.output.contains("running on slots 0, 1\n") && piped.output.contains("counter succeeded\n"), "\(piped.output)")
        try daemon.stop()
    }

    /// `status --follow` off a terminal prints one record per change, although the daemon also
    /// pushes the status four times a second while a job runs, for its progress.
    @Test func statusFollowOffATerminalPrintsOneRecordPerChange() throws {
        let daemon = try DaemonHarness.start(workers: 1)
        defer { try? daemon.stop() }
        let output = Pipe()
        let follower = Process()
        follower.executableURL = URL(fileURLWithPath: Binaries.poolctl)
        follower.arguments = ["--socket", daemon.socketPath, "status", "--follow"]
        follower.standardOutput = output
        follower.standardError = output
        try follower.run()
        defer { if follower.isRunning { kill(follower.processIdentifier, SIGKILL) } }
        let reader = PipeReader(output.fileHandleForReading)
        try reader.waitFor("0 running, 0 queued, 0 finished")
        // An event job that waits 2 s to be set: no change meanwhile, yet eight progress pushes.
        let run = try daemon.poolctl("run", "event", "--waiters", "1", "--timeout-waiters", "0", "--set-after", "2s")
        #expect(run.status == 0, "\(run.stderr)")
        try reader.waitFor("0 running, 0 queued, 1 finished")
        // SIGKILL: the children of the test process inherit its mask, which blocks SIGTERM.
        kill(follower.processIdentifier, SIGKILL)
        follower.waitUntilExit()
        let text = reader.text
        // Records: idle, queued or running (one or two), finished.
        let records = text.components(separatedBy: "pool: 1 workers").count - 1
        #expect((3...5).contains(records), "\(records) records:\n\(text)")
        #expect(!text.contains("\r") && !text.contains("\u{1B}"), "\(text.debugDescription)")
        try daemon.stop()
    }
}

/// The figures behind the live line, as the daemon reports them in a running job's progress.
@Suite struct LiveProgressFigureTests {
    /// Follows a job with GetJob + more and collects the progress of its running records.
    static func progressWhileRunning(_ daemon: DaemonHarness, _ id: Int) throws -> [JobProgress] {
        var seen: [JobProgress] = []
        let deadline = Deadline()
        try daemon.client().stream(PoolInterface.Method.getJob.qualifiedName, JobIDRequest(id: id)) { reply in
            try deadline.check("following job \(id)")
            let job = try VarlinkClient.decode(reply, as: JobReply.self).job
            if job.state == .running, let progress = job.progress { seen.append(progress) }
            return !job.state.isFinished
        }
        return seen
    }

    static func submit(_ daemon: DaemonHarness, _ kind: String, _ parameters: JSONValue) throws -> Int {
        try daemon.client().call(PoolInterface.Method.run.qualifiedName, RunRequest(kind: kind, parameters: parameters, detach: true),
                                 returning: JobReply.self).job.id
    }

    @Test func eventCountsItsWaitersAndTheWoken() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let id = try Self.submit(daemon, "event", .object(["waiters": .number(1), "timeoutWaiters": .number(1), "setAfter": .string("1500ms")]))
        let seen = try Self.progressWhileRunning(daemon, id)
        #expect(seen.contains { $0.waiting == 2 && $0.woken == 0 }, "both wait before the set: \(seen)")
        #expect(seen.allSatisfy { ($0.waiting ?? 0) + ($0.woken ?? 0) <= 2 && $0.queueDepth == nil && $0.text == nil }, "\(seen)")
        try daemon.stop()
    }

    @Test func appendShowsTheSharedStringAsItGrows() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let id = try Self.submit(daemon, "append", .object(["counts": .array([.number(6), .number(6)]),
                                                            "intervals": .array([.string("200ms"), .string("150ms")])]))
        let texts = try Self.progressWhileRunning(daemon, id).compactMap(\.text)
        let final = try #require(daemon.jobRecord(id).result?["text"]?.stringValue)
        #expect(final.count == 12)
        // Each a beginning of the final string, and some of them part of the way there.
        #expect(texts.allSatisfy { final.hasPrefix($0) }, "\(texts) vs \(final)")
        #expect(texts.contains { !$0.isEmpty && $0.count < final.count }, "\(texts)")
        try daemon.stop()
    }

    @Test func prodconsShowsItsQueueFullBehindASlowConsumer() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let id = try Self.submit(daemon, "prodcons", .object(["items": .number(40), "capacity": .number(5),
                                                              "produceDelay": .string("0s"), "consumeDelay": .string("50ms")]))
        let depths = try Self.progressWhileRunning(daemon, id).compactMap(\.queueDepth)
        #expect(depths.contains(5) && depths.allSatisfy { (0...5).contains($0) }, "\(depths)")
        try daemon.stop()
    }

    /// `Status` with `more` carries the running jobs' progress, pushed while they run.
    @Test func statusFollowersGetTheRunningJobsProgress() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let id = try Self.submit(daemon, "event", .object(["waiters": .number(1), "timeoutWaiters": .number(0), "setAfter": .string("2s")]))
        var pushes = 0
        try daemon.waitForStatus { status in
            if status.runningJobs?.first?.id == id, status.runningJobs?.first?.progress?.waiting == 1 { pushes += 1 }
            return pushes >= 3
        }
        #expect(try daemon.waitForJob(id).state == .succeeded)
        #expect(try daemon.status().runningJobs == nil)
        try daemon.stop()
    }
}

/// Runs a program with its stdout and stderr into one pipe, as `poolctl ... 2>&1 | less` has it.
func runPiped(_ path: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let pipe = Pipe()
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    process.standardOutput = pipe
    process.standardError = pipe
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// Collects what a pipe delivers, and waits for a text to appear in it.
final class PipeReader: @unchecked Sendable {
    // @unchecked: `collected` is only touched under `lock`.
    private let lock = NSCondition()
    private var collected = ""

    init(_ handle: FileHandle) {
        handle.readabilityHandler = { [self] handle in
            let data = handle.availableData
            lock.lock()
            if data.isEmpty { handle.readabilityHandler = nil } else { collected += String(decoding: data, as: UTF8.self) }
            lock.broadcast()
            lock.unlock()
        }
    }

    var text: String {
        lock.lock()
        defer { lock.unlock() }
        return collected
    }

    func waitFor(_ text: String, timeoutSeconds: Double = 60) throws {
        let end = Date().addingTimeInterval(timeoutSeconds)
        lock.lock()
        defer { lock.unlock() }
        while !collected.contains(text) {
            guard lock.wait(until: end) else {
                throw HarnessError(description: "gave up after \(timeoutSeconds) s waiting for '\(text)'; got:\n\(collected)")
            }
        }
    }
}
