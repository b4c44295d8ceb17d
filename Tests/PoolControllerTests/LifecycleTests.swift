import Testing
@testable import PoolDaemon

/// The lifecycle's transition function alone: each event in each state, and the actions it returns.
@Suite struct LifecycleTests {
    private func stop(_ lifecycle: inout Lifecycle, running: Int, timeout: Duration = .seconds(30), by reason: String = "SIGTERM") -> [Lifecycle.Action] {
        lifecycle.transition(on: .stopRequested(reason: reason, now: 1_000, drainTimeout: timeout, runningJobs: running))
    }

    @Test func thePoolIsReadyOnceItsWorkersAreUpAndOnlyThen() {
        var lifecycle = Lifecycle()
        #expect(lifecycle.transition(on: .workersGone) == [])
        #expect(lifecycle.isStarting)
        #expect(lifecycle.transition(on: .workersUp) == [.announceReady])
        #expect(lifecycle.isRunning)
        #expect(lifecycle.transition(on: .workersUp) == [])
    }

    @Test func aStopWithRunningJobsDrainsUntilTheDeadline() {
        var lifecycle = Lifecycle()
        _ = lifecycle.transition(on: .workersUp)
        let drain = Lifecycle.Drain(reason: "SIGTERM", timeout: .seconds(30), deadline: 30_000_001_000, deadlinePassed: false)
        #expect(stop(&lifecycle, running: 2) == [.beginDrain(drain), .scheduleDrainDeadline(.seconds(30))])
        #expect(lifecycle.acceptsReplacements)
        #expect(lifecycle.drainLeft(now: 10_000_001_000) == 20_000_000_000)
        #expect(lifecycle.transition(on: .drainDeadlineReached)
            == [.cancelRunningJobs(reason: "the daemon is shutting down (SIGTERM) and the job was still running at the drain deadline (30s)")])
        #expect(!lifecycle.acceptsReplacements)
        #expect(lifecycle.drainLeft(now: 10_000_001_000) == 0)
        // Once the deadline has passed, neither the timer nor another stop request cancels again.
        #expect(lifecycle.transition(on: .drainDeadlineReached) == [])
        #expect(stop(&lifecycle, running: 2, by: "SIGINT") == [])
        #expect(lifecycle.transition(on: .workersGone) == [.finishStop])
        #expect(lifecycle.isStopped)
        #expect(lifecycle.drain?.reason == "SIGTERM")
        #expect(stop(&lifecycle, running: 0) == [])
    }

    @Test func aSecondStopRequestCutsTheDrainShortOnce() {
        var lifecycle = Lifecycle()
        _ = lifecycle.transition(on: .workersUp)
        _ = stop(&lifecycle, running: 1)
        #expect(stop(&lifecycle, running: 1, by: "SIGINT")
            == [.cutDrainShort(askedBy: "SIGINT", reason: "the daemon is shutting down (SIGTERM) and was asked again to stop")])
        #expect(stop(&lifecycle, running: 1, by: "Shutdown") == [])
    }

    @Test func nothingToDrainOrNoDrainTimeEndsTheDrainAtOnce() {
        var idle = Lifecycle()
        _ = idle.transition(on: .workersUp)
        #expect(stop(&idle, running: 0).count == 1)
        #expect(idle.drain?.deadlinePassed == true)

        var noTime = Lifecycle()
        let actions = stop(&noTime, running: 3, timeout: .zero)
        #expect(actions.last == .cancelRunningJobs(reason: "the daemon is shutting down (SIGTERM) with no drain time (--drain-timeout 0)"))
        #expect(noTime.isDraining)
        #expect(noTime.drain?.deadlinePassed == true)
    }
}
