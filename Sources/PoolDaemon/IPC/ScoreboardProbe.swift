import CPooldShim
#if canImport(Glibc)
import Glibc
#endif

/// A look at some instance's scoreboard from outside: can its lock be taken (then its creator is
/// dead, or has not taken the lock yet), and what does its header say. While the probe holds the
/// lock, no other instance judges or removes the same scoreboard; `close()` lets go.
final class ScoreboardProbe {
    let name: String
    private var descriptor: Int32

    /// What a complete header says.
    struct Header {
        let pid: Int32
        let capacity: Int
    }

    /// Opens the scoreboard; nil if it is gone or not this user's to open.
    init?(name: String) {
        let descriptor = shm_open(name, O_RDONLY | O_CLOEXEC, 0)
        guard descriptor >= 0 else { return nil }
        self.name = name
        self.descriptor = descriptor
    }

    deinit {
        close()
    }

    /// Takes the lock without waiting; false while its creator (or another probe) holds it.
    func tryLock() -> Bool {
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            if errno != EINTR { return false }
        }
        return true
    }

    /// False once the name was unlinked (by whoever held the lock before): nothing left to judge.
    var isLinked: Bool {
        var info = stat()
        return fstat(descriptor, &info) == 0 && info.st_nlink > 0
    }

    /// Seconds since the segment was created (sized, to be exact).
    var ageSeconds: Double {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { return 0 }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec - info.st_ctim.tv_sec) + Double(now.tv_nsec - info.st_ctim.tv_nsec) / 1e9
    }

    /// The header, if its creator finished writing it (the magic is written last).
    var header: Header? {
        guard let header = read(pool_scoreboard_header(), at: 0), header.magic == Scoreboard.Header.magic else { return nil }
        return Header(pid: header.pid, capacity: Int(header.capacity))
    }

    /// Slots the segment has room for, from its size (also without a header).
    var slotCount: Int {
        var info = stat()
        guard fstat(descriptor, &info) == 0, Int(info.st_size) > Scoreboard.Header.size else { return 0 }
        return (Int(info.st_size) - Scoreboard.Header.size) / Scoreboard.recordSize
    }

    /// The worker pids its slot records name (0s left out).
    var workerPIDs: [Int32] {
        records.compactMap { $0.pid > 0 ? $0.pid : nil }
    }

    /// The jobs its slot records say their workers were running.
    var jobIDs: [Int] {
        records.compactMap { $0.jobID > 0 ? Int($0.jobID) : nil }
    }

    private var records: [pool_scoreboard_record] {
        (0..<slotCount).compactMap { read(pool_scoreboard_record(), at: Scoreboard.Header.size + $0 * Scoreboard.recordSize) }
    }

    /// Lets go of the lock (if held) and the descriptor.
    func close() {
        guard descriptor >= 0 else { return }
        Glibc.close(descriptor)
        descriptor = -1
    }

    /// Reads a header or a record with pread: a few bytes need no mapping.
    private func read<T: BitwiseCopyable>(_ empty: T, at offset: Int) -> T? {
        var value = empty
        let count = withUnsafeMutableBytes(of: &value) { pread(descriptor, $0.baseAddress, $0.count, off_t(offset)) }
        return count == MemoryLayout<T>.size ? value : nil
    }
}
