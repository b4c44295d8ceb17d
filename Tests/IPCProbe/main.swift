// ipc-probe: a tiny second process for the PoolIPC tests. It maps, adds, sends, waits, or dies holding a
// lock, so that the tests can check what another process sees. Plain argv, no Foundation (quick to start).
//
//   ipc-probe segment-add NAME OFFSET VALUE    atomically add VALUE to the Int64 at OFFSET; print the new value
//   ipc-probe mq-send NAME VALUE               send one Int64 message to the queue NAME
//   ipc-probe hold-lock NAME OFFSET            lock the RobustMutex at OFFSET, print "locked", block forever
//   ipc-probe futex-wait NAME OFFSET EXPECTED  print "waiting", wait (20 s at most) while the UInt32 at OFFSET
//                                              equals EXPECTED; print "woken" (exit 0) or "timeout" (exit 1)
//   ipc-probe ring-consume NAME OFFSET OWNER COUNT
//                                              take COUNT one-item slots from the SharedRing at OFFSET as
//                                              OWNER, waiting when it is empty; print "SUM in order" (the
//                                              values came as 1, 2, 3...) or "SUM out of order"
//   ipc-probe ring-hold NAME OFFSET OWNER      claim one slot of the ring for reading as OWNER, print
//                                              "holding POSITION VALUE", block forever (to be killed)
//
// Errors go to stderr, with exit status 1 (2 for a usage error).
import Atomics
import PoolIPC
#if canImport(Glibc)
import Glibc
#endif

/// Writes `text` and a newline straight to a descriptor: no stdio buffer to flush before blocking or dying.
func emit(_ text: String, to descriptor: Int32 = STDOUT_FILENO) {
    let bytes = Array((text + "\n").utf8)
    var written = 0
    while written < bytes.count {
        let count = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + written, $0.count - written) }
        if count < 0 {
            if errno == EINTR { continue }
            return
        }
        written += count
    }
}

func fail(_ message: String, status: Int32 = 1) -> Never {
    emit("ipc-probe: \(message)", to: STDERR_FILENO)
    exit(status)
}

func usage() -> Never {
    fail("""
        usage: ipc-probe segment-add NAME OFFSET VALUE
               ipc-probe mq-send NAME VALUE
               ipc-probe hold-lock NAME OFFSET
               ipc-probe futex-wait NAME OFFSET EXPECTED
               ipc-probe ring-consume NAME OFFSET OWNER COUNT
               ipc-probe ring-hold NAME OFFSET OWNER
        """, status: 2)
}

func parse<T: FixedWidthInteger>(_ text: String, as type: T.Type, _ what: String) -> T {
    guard let value = T(text) else { fail("\(what) '\(text)' is not a valid \(T.self)") }
    return value
}

/// Checks that `size` bytes at `offset` lie inside the segment with the given alignment, so that a bad
/// argument is an error message rather than a precondition trap.
func checkOffset(_ offset: Int, size: Int, alignment: Int, in segment: SharedSegment) {
    guard offset >= 0, offset <= segment.size - size else {
        fail("offset \(offset) + \(size) bytes is outside segment \(segment.name) (\(segment.size) bytes)")
    }
    guard offset % alignment == 0 else { fail("offset \(offset) is not aligned to \(alignment)") }
}

func openSegment(_ name: String) -> SharedSegment {
    do { return try SharedSegment.open(name: name) } catch { fail("\(error)") }
}

let arguments = Array(CommandLine.arguments.dropFirst())
guard let command = arguments.first else { usage() }

switch (command, arguments.count) {
case ("segment-add", 4):
    let offset = parse(arguments[2], as: Int.self, "OFFSET")
    let value = parse(arguments[3], as: Int64.self, "VALUE")
    let segment = openSegment(arguments[1])
    checkOffset(offset, size: MemoryLayout<Int64>.size, alignment: MemoryLayout<Int64>.alignment, in: segment)
    let result = withExtendedLifetime(segment) {
        let atomic = UnsafeAtomic<Int64>(at: segment.pointer(at: offset, as: Int64.AtomicRepresentation.self))
        return atomic.wrappingIncrementThenLoad(by: value, ordering: .sequentiallyConsistent)
    }
    emit(String(result))

case ("mq-send", 3):
    let value = parse(arguments[2], as: Int64.self, "VALUE")
    do {
        let queue = try MessageQueue.open(name: arguments[1])
        defer { queue.close() }
        try queue.send(value)
    } catch {
        fail("\(error)")
    }
    emit("sent")

case ("hold-lock", 3):
    let offset = parse(arguments[2], as: Int.self, "OFFSET")
    let segment = openSegment(arguments[1])
    checkOffset(offset, size: RobustMutex.size, alignment: 8, in: segment)
    // The mapping must outlive the wait: unmapped, the kernel could not mark the mutex owner-dead.
    withExtendedLifetime(segment) {
        let mutex = RobustMutex(at: segment.base + offset)
        do {
            switch try mutex.lock() {
            case .acquired: emit("locked")
            case .recoveredFromDeadOwner: emit("locked (recovered from a dead owner)")
            }
        } catch {
            fail("\(error)")
        }
        while true { pause() }
    }

case ("futex-wait", 4):
    let offset = parse(arguments[2], as: Int.self, "OFFSET")
    let expected = parse(arguments[3], as: UInt32.self, "EXPECTED")
    let segment = openSegment(arguments[1])
    checkOffset(offset, size: MemoryLayout<UInt32>.size, alignment: MemoryLayout<UInt32>.alignment, in: segment)
    let outcome = withExtendedLifetime(segment) {
        let word = FutexWord(at: segment.base + offset)
        emit("waiting")
        return word.wait(whileEqualTo: expected, timeoutNanos: 20_000_000_000)
    }
    switch outcome {
    case .changed: emit("woken")
    case .timedOut:
        emit("timeout")
        exit(1)
    }

case ("ring-consume", 5):
    let offset = parse(arguments[2], as: Int.self, "OFFSET")
    let owner = parse(arguments[3], as: Int.self, "OWNER")
    let count = parse(arguments[4], as: Int.self, "COUNT")
    let segment = openSegment(arguments[1])
    checkOffset(offset, size: 0, alignment: SharedRing.alignment, in: segment)
    let (sum, inOrder) = withExtendedLifetime(segment) { () -> (Int64, Bool) in
        let ring: SharedRing
        do { ring = try SharedRing.attach(at: segment.base + offset, available: segment.size - offset) } catch { fail("\(error)") }
        var sum: Int64 = 0, inOrder = true
        for index in 0..<count {
            var slot = ring.tryClaimForReading(owner: owner)
            while slot == nil { slot = ring.claimForReading(owner: owner, timeoutNanos: 20_000_000_000) }
            let value = slot!.items.load(as: Int64.self)
            sum += value
            if value != Int64(index + 1) { inOrder = false }
            ring.release(slot!)
        }
        return (sum, inOrder)
    }
    emit("\(sum) \(inOrder ? "in order" : "out of order")")

case ("ring-hold", 4):
    let offset = parse(arguments[2], as: Int.self, "OFFSET")
    let owner = parse(arguments[3], as: Int.self, "OWNER")
    let segment = openSegment(arguments[1])
    checkOffset(offset, size: 0, alignment: SharedRing.alignment, in: segment)
    withExtendedLifetime(segment) {
        let ring: SharedRing
        do { ring = try SharedRing.attach(at: segment.base + offset, available: segment.size - offset) } catch { fail("\(error)") }
        var slot = ring.tryClaimForReading(owner: owner)
        while slot == nil { slot = ring.claimForReading(owner: owner, timeoutNanos: 20_000_000_000) }
        emit("holding \(slot!.position) \(slot!.items.load(as: Int64.self))")
        while true { pause() }
    }

default:
    usage()
}
exit(0)
