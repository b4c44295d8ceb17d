#if canImport(Glibc)
import Glibc
#endif

/// Descriptors held open on /dev/null so that a worker can be spawned (a command queue, a pidfd)
/// even when clients have taken every other descriptor the limit allows. They are released just
/// before a spawn and taken again right after it, on the same event-loop turn, so no connection
/// accepted in between can take their place; and a dead worker's pidfd, closed when it is reaped,
/// has its place held until its slot is respawned after the backoff. Lives on the event loop.
final class DescriptorReserve {
    private var descriptors: [Int32] = []
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        refill()
    }

    deinit {
        for descriptor in descriptors { close(descriptor) }
    }

    /// Takes free descriptors until it holds `capacity` again (as many as there are).
    private func refill() {
        while descriptors.count < capacity {
            let descriptor = open("/dev/null", O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { return }
            descriptors.append(descriptor)
        }
    }

    /// Holds `count` more than its capacity: the places of descriptors just closed that a respawn
    /// will need again. Given back at the next `whileReleased`.
    func hold(_ count: Int) {
        for _ in 0..<count {
            let descriptor = open("/dev/null", O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { return }
            descriptors.append(descriptor)
        }
    }

    /// The descriptors held now, for tests.
    var held: [Int32] { descriptors }

    /// Runs `body` with `needed` of the reserve's descriptors free for it to use (and those held
    /// beyond its capacity), then takes back up to its capacity of what is left. Only what the
    /// body opens is released: a job's start (its segment, and its queue for prodcons) and a
    /// worker's spawn (its command queue and pidfd) need two each, and closing and reopening the
    /// whole reserve for every job was 16 system calls on the Run's path.
    func whileReleased<R, E: Error>(needing needed: Int = 2, _ body: () throws(E) -> R) throws(E) -> R {
        let release = min(descriptors.count, needed + max(0, descriptors.count - capacity))
        for descriptor in descriptors.suffix(release) { close(descriptor) }
        descriptors.removeLast(release)
        defer { refill() }
        return try body()
    }
}
