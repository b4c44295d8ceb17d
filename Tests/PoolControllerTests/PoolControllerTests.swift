import NIOCore
import PoolIPC
import PoolProtocol
import Testing
@testable import PoolDaemon
#if canImport(Glibc)
import Glibc
#endif

/// The controller's timers and decisions, in virtual time: what the end-to-end suite can only
/// show in real seconds and through the daemon's log.
@Suite struct PoolControllerTests {
    // MARK: The drain

    @Test func theDrainLetsRunningJobsGoOnUntilItsDeadlineThenCancelsThem() throws {
        let pool = try ControllerHarness(workers: 2) { $0.drainTimeout = .seconds(30) }
        pool.ready(0, 1)
        let running = try pool.submit(workers: 2)
        let queued = try pool.submit(workers: 2)
        #expect(running.state == .running)
        #expect(queued.state == .queued)

        pool.controller.requestStop(reason: "SIGTERM")
        pool.loop.run()
        #expect(queued.state == .cancelled)
        #expect(queued.record.error == "the daemon is shutting down (SIGTERM); the job had not started")
        #expect(pool.controller.statusReply().drain?.secondsLeft == 30)

        pool.advance(by: .milliseconds(29_999))
        #expect(running.cancelReason == nil)
        #expect(running.segment?.isCancelled == false)

        pool.advance(by: .milliseconds(1))
        #expect(running.cancelReason == "the daemon is shutting down (SIGTERM) and the job was still running at the drain deadline (30s)")
        #expect(running.segment?.isCancelled == true)

        // The workers notice the cancel flag and end their parts: the job ends cancelled, and each
        // busy worker is asked to exit as soon as its part has ended.
        pool.partEnded(0, job: running, outcome: .cancelled)
        #expect(pool.worker(0).commands.sent.last == WorkerCommand(kind: .exit))
        #expect(pool.worker(1).commands.sent.last?.kind == .runJob)
        pool.partEnded(1, job: running, outcome: .cancelled)
        #expect(running.state == .cancelled)
        #expect(running.record.error == running.cancelReason)
        #expect(!pool.worker(0).killed && !pool.worker(1).killed)

        pool.exits(0, .exited(0))
        #expect(!pool.stopped)
        pool.exits(1, .exited(0))
        #expect(pool.stopped)
        pool.finish()
    }

    @Test func aSecondStopRequestCutsTheDrainShort() throws {
        let pool = try ControllerHarness(workers: 1) { $0.drainTimeout = .seconds(30) }
        pool.ready(0)
        let running = try pool.submit(workers: 1)
        pool.controller.requestStop(reason: "SIGTERM")
        pool.loop.run()
        #expect(running.cancelReason == nil)
        pool.controller.requestStop(reason: "SIGINT")
        pool.loop.run()
        #expect(running.cancelReason == "the daemon is shutting down (SIGTERM) and was asked again to stop")
        #expect(pool.controller.statusReply().drain?.secondsLeft == 0)
        pool.finish()
    }

    // MARK: Cancelling

    @Test func aCancelledJobsWorkersAreKilledOnlyAfterTheGrace() throws {
        let pool = try ControllerHarness(workers: 2) { $0.cancelGrace = .milliseconds(500) }
        pool.ready(0, 1)
        let job = try pool.submit(workers: 2)
        pool.controller.cancel(job, reason: "cancelled by a client")
        pool.loop.run()
        #expect(job.segment?.isCancelled == true)
        // Participant 0 notices; participant 1 does not.
        pool.partEnded(0, job: job, outcome: .cancelled)

        pool.advance(by: .milliseconds(499))
        #expect(!pool.worker(1).killed)
        pool.advance(by: .milliseconds(1))
        #expect(pool.worker(1).killed)
        #expect(!pool.worker(0).killed)

        pool.exits(1, .signalled(SIGKILL))
        #expect(job.state == .failed)
        #expect(job.record.error?.hasPrefix("the worker in slot 1 (pid \(pool.worker(1).pid)) died: killed by signal 9") == true)
        pool.finish()
    }

    @Test func aJobThatOverrunsItsTimeoutIsCancelledAndFails() throws {
        let pool = try ControllerHarness(workers: 1) { $0.cancelGrace = .seconds(1) }
        pool.ready(0)
        let job = try pool.submit(workers: 1, timeout: .milliseconds(1500))
        pool.advance(by: .milliseconds(1499))
        #expect(job.cancelReason == nil)
        pool.advance(by: .milliseconds(1))
        #expect(job.cancelReason == "timed out")
        #expect(job.segment?.isCancelled == true)
        pool.partEnded(0, job: job, outcome: .cancelled)
        #expect(job.state == .failed)
        #expect(job.record.error == "timed out: still running after its timeout of 1.5s")
        #expect(!pool.worker(0).killed)
        pool.finish()
    }

    // MARK: Respawning

    @Test func aCrashingWorkerIsRespawnedAfterAnExponentialBackoffUpToItsCeiling() throws {
        let pool = try ControllerHarness(workers: 1) {
            $0.backoffBase = .milliseconds(100)
            $0.backoffMax = .milliseconds(300)
            $0.failureLimit = 10
        }
        #expect(pool.launches(0) == 1)
        // The delay is the ceiling times a random 0.5 to 1.0: never before half of it, always by it.
        for (crash, ceiling) in [100, 200, 300, 300].enumerated().map({ ($0.offset + 1, $0.element) }) {
            pool.exits(0)
            #expect(pool.state(0) == .backoff)
            pool.advance(by: .milliseconds(ceiling / 2 - 1))
            #expect(pool.launches(0) == crash, "crash \(crash): respawned before half of \(ceiling)ms")
            pool.advance(by: .milliseconds(ceiling / 2 + 1))
            #expect(pool.launches(0) == crash + 1, "crash \(crash): not respawned within \(ceiling)ms")
            #expect(pool.state(0) == .starting)
        }
        #expect(pool.controller.slotTable[0]?.restarts == 4)
        pool.finish()
    }

    @Test func aSlotThatCrashesTooOftenWithinTheWindowFailsAndFailsTheJobsThatNeedIt() throws {
        let pool = try ControllerHarness(workers: 2) {
            $0.backoffBase = .milliseconds(100)
            $0.failureLimit = 3
            $0.failureWindow = .seconds(60)
        }
        pool.ready(1)
        let waiting = try pool.submit(workers: 2)
        #expect(waiting.state == .queued)
        for _ in 1...2 {
            pool.exits(0)
            pool.advance(by: .seconds(1))
        }
        #expect(pool.state(0) == .starting)
        #expect(waiting.state == .queued)
        pool.exits(0)
        #expect(pool.state(0) == .failed)
        #expect(waiting.state == .failed)
        #expect(waiting.record.error?.hasPrefix("PoolTooSmall: ") == true)
        pool.advance(by: .seconds(600))
        #expect(pool.launches(0) == 3)
        #expect(pool.state(0) == .failed)
        pool.finish()
    }

    @Test func crashesOutsideTheFailureWindowDoNotCountTowardsGivingUp() throws {
        let pool = try ControllerHarness(workers: 1) {
            $0.backoffBase = .milliseconds(100)
            $0.failureLimit = 2
            $0.failureWindow = .seconds(10)
        }
        pool.exits(0)
        pool.advance(by: .seconds(11))
        #expect(pool.launches(0) == 2)
        pool.exits(0)
        #expect(pool.state(0) == .backoff)
        pool.exits(0, after: .seconds(1))
        #expect(pool.state(0) == .failed)
        pool.finish()
    }

    // MARK: Heartbeats

    @Test func aHungWorkerIsKilledAndItsReplacementTakesItsPartOver() throws {
        let pool = try ControllerHarness(workers: 2) {
            $0.heartbeatTimeout = .seconds(1)
            $0.backoffBase = .milliseconds(100)
        }
        pool.ready(0, 1)
        let job = try pool.submit(workers: 2)
        // Slot 1's worker stops beating; slot 0's goes on.
        for _ in 0..<4 {
            pool.beatAll(except: [1])
            pool.advance(by: .milliseconds(250))
        }
        #expect(!pool.worker(1).killed, "killed before a second without a heartbeat")
        for _ in 0..<2 {
            pool.beatAll(except: [1])
            pool.advance(by: .milliseconds(250))
        }
        #expect(pool.worker(1).killed)
        #expect(!pool.worker(0).killed)

        let hung = pool.worker(1)
        pool.exits(1, .signalled(SIGKILL))
        #expect(job.state == .running)
        #expect(job.deadWorkers.count == 1)
        #expect(job.deadWorkers.first?.exit.hasPrefix("hung (no heartbeat for 1.25s), killed; killed by signal 9") == true)
        #expect(pool.controller.slotTable[1]?.takeover?.participant == 1)

        pool.beatAll()
        pool.advance(by: .milliseconds(100))
        #expect(pool.launches(1) == 2)
        pool.ready(1)
        #expect(pool.runCommands(1).last == WorkerCommand(kind: .runJob, jobID: job.id, participant: 1, attempt: 1))
        #expect(pool.worker(1).pid != hung.pid)
        #expect(pool.state(1) == .busy)

        pool.partEnded(0, job: job)
        pool.partEnded(1, job: job)
        #expect(job.state == .succeeded)
        #expect(job.deadWorkers.first?.replaced == true)
        pool.finish()
    }

    // MARK: Dispatch order

    @Test func jobsStartInTheOrderTheyWereSubmitted() throws {
        let pool = try ControllerHarness(workers: 1)
        pool.ready(0)
        let jobs = try (0..<3).map { _ in try pool.submit(workers: 1) }
        for job in jobs { pool.partEnded(0, job: job) }
        #expect(pool.runCommands(0).map { Int($0.jobID) } == jobs.map(\.id))
        #expect(jobs.allSatisfy { $0.state == .succeeded })
        pool.finish()
    }

    @Test func aSmallerJobBackfillsPastOneThatCannotStartYet() throws {
        let pool = try ControllerHarness(workers: 3)
        pool.ready(0, 1, 2)
        let first = try pool.submit(workers: 2)
        let two = try pool.submit(workers: 2)
        let one = try pool.submit(workers: 1)
        #expect(first.slots == [0, 1])
        #expect(two.state == .queued)
        #expect(one.state == .running)
        #expect(one.slots == [2])
        #expect(two.overtaken == 1)
        #expect(two.record.waiting == "waiting for 2 idle workers; 3 busy with jobs \(first.id), \(one.id)")

        pool.partEnded(0, job: first)
        #expect(two.state == .queued)
        #expect(two.record.waiting == "waiting for 2 idle workers; 1 idle, 2 busy with jobs \(first.id), \(one.id)")
        pool.partEnded(1, job: first)
        #expect(two.state == .running)
        #expect(two.slots == [0, 1])
        pool.finish()
    }

    @Test func aJobIsOvertakenAtMostEightTimesThenGetsTheNextFreeWorkers() throws {
        let pool = try ControllerHarness(workers: 2)
        pool.ready(0, 1)
        let long = try pool.submit(workers: 1)
        let big = try pool.submit(workers: 2)
        for round in 1...8 {
            let small = try pool.submit(workers: 1)
            #expect(small.state == .running, "small job \(round) did not backfill")
            pool.partEnded(1, job: small)
        }
        #expect(big.overtaken == 8)

        let ninth = try pool.submit(workers: 1)
        #expect(ninth.state == .queued)
        #expect(pool.state(1) == .ready)
        #expect(ninth.record.waiting == "waiting behind job \(big.id), which was overtaken 8 times and gets the next free workers")

        pool.partEnded(0, job: long)
        #expect(big.state == .running)
        #expect(ninth.state == .queued)
        pool.partEnded(0, job: big)
        pool.partEnded(1, job: big)
        #expect(ninth.state == .running)
        pool.finish()
    }
}

extension ControllerHarness {
    /// Lets `delay` pass, then the slot's worker exits.
    func exits(_ slot: Int, after delay: Duration) {
        advance(by: delay)
        exits(slot)
    }
}
