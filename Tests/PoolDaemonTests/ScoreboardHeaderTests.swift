import CPooldShim
import PoolIPC
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A worker maps its daemon's scoreboard by name: one whose header is not this build's (another
/// program's segment under the name, another layout version) is refused with what it found and
/// what was expected, and the worker exits with the do-not-respawn status instead of misreading it.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct ScoreboardHeaderTests {
    /// The IPC objects a worker opens before its work starts: its command queue, the event queue
    /// and a scoreboard of one slot with `header`, under a prefix of the test's own. The test holds
    /// the scoreboard's lock, as a daemon does, so that no daemon starting meanwhile (this
    /// machine runs others) takes the forged instance for a dead one and removes its objects.
    private final class ForgedInstance {
        static let counter = Counter()

        let prefix: String
        let segment: SharedSegment
        private var lock: Int32

        init(header: pool_scoreboard_header) throws {
            prefix = "/poold-sbtest-\(getpid())-\(Self.counter.next())"
            segment = try SharedSegment.create(
                name: prefix + ".scoreboard",
                size: MemoryLayout<pool_scoreboard_header>.size + MemoryLayout<pool_scoreboard_record>.stride)
            lock = shm_open(prefix + ".scoreboard", O_RDWR | O_CLOEXEC, 0)
            guard lock >= 0, flock(lock, LOCK_EX) == 0 else {
                remove()
                throw HarnessError(description: "cannot lock the forged scoreboard: \(String(cString: strerror(errno)))")
            }
            segment.base.layout(pool_scoreboard_header.self).pointee = header
            for queue in [prefix + ".slot0.commands", prefix + ".events"] {
                try MessageQueue.create(name: queue, depth: 1, messageSize: 64).close()
            }
        }

        deinit {
            remove()
        }

        var record: pool_scoreboard_record {
            segment.base.layout(pool_scoreboard_header.self).end.layout(pool_scoreboard_record.self).pointee
        }

        /// `poold worker` for slot 0, as the daemon spawns it (this process is its daemon).
        func runWorker() throws -> CommandResult {
            try runProgram(Binaries.poold, ["worker", "--slot", "0", "--prefix", prefix, "--daemon-pid", "\(getpid())",
                                            "--log-target", "stderr"])
        }

        /// Unlinks the objects, the scoreboard last and under its lock, as a daemon does.
        func remove() {
            MessageQueue.unlink(name: prefix + ".slot0.commands")
            MessageQueue.unlink(name: prefix + ".events")
            SharedSegment.unlink(name: prefix + ".scoreboard")
            if lock >= 0 { close(lock) }
            lock = -1
        }
    }

    private static func header(magic: UInt32 = POOL_SCOREBOARD_MAGIC, version: UInt32 = POOL_SCOREBOARD_VERSION) -> pool_scoreboard_header {
        var header = pool_scoreboard_header()
        header.magic = magic
        header.version = version
        header.pid = getpid()
        header.capacity = 1
        return header
    }

    @Test func aScoreboardWithAnotherMagicNumberIsRefusedNamingBoth() throws {
        let instance = try ForgedInstance(header: Self.header(magic: 0xDEAD_BEEF))
        let worker = try instance.runWorker()
        #expect(worker.status == 78, "EX_CONFIG: do not respawn; \(worker.stderr)")
        #expect(worker.stderr.contains("its magic number is 0xDEADBEEF, expected 0x50534231"), "\(worker.stderr)")
        #expect(instance.record.pid == 0, "the worker wrote nothing into a scoreboard it refused")
        instance.remove()
        #expect(IPCObjects.of(instance: instance.prefix) == [])
    }

    @Test func aScoreboardOfAnotherLayoutVersionIsRefusedNamingBoth() throws {
        let other = POOL_SCOREBOARD_VERSION + 1
        let instance = try ForgedInstance(header: Self.header(version: other))
        let worker = try instance.runWorker()
        #expect(worker.status == 78, "EX_CONFIG: do not respawn; \(worker.stderr)")
        #expect(worker.stderr.contains("its layout version is \(other), expected \(POOL_SCOREBOARD_VERSION)"), "\(worker.stderr)")
        #expect(instance.record.pid == 0, "the worker wrote nothing into a scoreboard it refused")
        instance.remove()
        #expect(IPCObjects.of(instance: instance.prefix) == [])
    }

    @Test func aScoreboardSmallerThanItsHeaderSaysIsRefused() throws {
        var header = Self.header()
        header.capacity = 8
        let instance = try ForgedInstance(header: header)
        let worker = try instance.runWorker()
        #expect(worker.status == 78, "EX_CONFIG: do not respawn; \(worker.stderr)")
        #expect(worker.stderr.contains("its header says 8 slots, but its 128 bytes hold 1"), "\(worker.stderr)")
        instance.remove()
        #expect(IPCObjects.of(instance: instance.prefix) == [])
    }
}
