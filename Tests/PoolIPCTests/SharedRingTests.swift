import Atomics
import PoolIPC
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("SharedRing")
struct SharedRingTests {
    /// A segment holding one ring of one-item slots, unlinked (and unmapped) when the test ends.
    final class RingSegment {
        let name: String
        let segment: SharedSegment
        let ring: SharedRing

        init(_ tag: String, capacity: Int, owners: Int = 4) throws {
            name = TestNames.unique(tag)
            let slotBytes = SharedRing.slotStride(itemBytes: 8)
            segment = try SharedSegment.create(name: name, size: SharedRing.byteSize(capacity: capacity, slotBytes: slotBytes, owners: owners))
            ring = SharedRing.create(at: segment.base, capacity: capacity, slotBytes: slotBytes, owners: owners)
        }

        deinit { SharedSegment.unlink(name: name) }

        /// Publishes one slot holding `value`, as `owner`, waiting for room.
        func produce(_ value: Int64, owner: Int = 0) {
            var slot = ring.tryClaimForWriting(owner: owner)
            while slot == nil { slot = ring.claimForWriting(owner: owner, timeoutNanos: 1_000_000_000) }
            slot!.items.storeBytes(of: value, as: Int64.self)
            slot!.count = 1
            ring.publish(slot!, nowNanos: MonotonicClock.nanoseconds)
        }

        /// Takes and releases one slot, as `owner`: its value, or nil when the ring is empty.
        func consume(owner: Int = 1) -> Int64? {
            guard let slot = ring.tryClaimForReading(owner: owner) else { return nil }
            defer { ring.release(slot) }
            return slot.items.load(as: Int64.self)
        }
    }

    @Test("items cross to another process in order through a ring smaller than the stream, both sides sleeping on futexes")
    func crossesProcesses() throws {
        let shared = try RingSegment("ring-cross", capacity: 4)
        let count = 20_000
        let probe = try Probe("ring-consume", shared.name, "0", "1", "\(count)")
        // The consumer sleeps on the empty ring before anything is produced: what wakes it is a publish.
        try #require(Kernel.await(.seconds(10)) { Kernel.isBlockedInFutexWait(probe.pid) },
                     "ipc-probe never slept on the empty ring; stderr: \(probe.standardError())")
        for value in 1...count { shared.produce(Int64(value)) }
        #expect(try probe.readLine() == "\(count * (count + 1) / 2) in order")
        #expect(try probe.waitForExit() == .exited(0))
        #expect(shared.ring.length == 0)
        #expect(shared.consume() == nil)
    }

    @Test("a consumer killed holding a slot leaves it claimed in its name: others pass it by, its replacement finds it")
    func killedConsumerLeavesItsSlot() throws {
        let shared = try RingSegment("ring-kill", capacity: 3)
        for value: Int64 in [10, 20, 30] { shared.produce(value) }
        let probe = try Probe("ring-hold", shared.name, "0", "2")
        #expect(try probe.readLine() == "holding 0 10")
        probe.send(signal: SIGKILL)
        #expect(try probe.waitForExit() == .signalled(SIGKILL))

        // Another consumer gets the next item, not the dead one's.
        #expect(shared.consume(owner: 1) == 20)
        let held = try #require(shared.ring.slotHeld(by: 2), "the dead consumer's slot is not found in its name")
        #expect(!held.writing)
        #expect(held.slot.position == 0)
        #expect(held.slot.items.load(as: Int64.self) == 10)
        #expect(shared.ring.slotHeld(by: 1) == nil)
        shared.ring.release(held.slot)
        #expect(shared.ring.slotHeld(by: 2) == nil)
        #expect(shared.consume(owner: 1) == 30)
        #expect(shared.consume(owner: 1) == nil)
        // The released slot takes the producers' next round.
        for value: Int64 in [40, 50, 60] { shared.produce(value) }
        #expect([shared.consume(), shared.consume(), shared.consume(), shared.consume()] == [40, 50, 60, nil])
    }

    @Test("a producer's replacement tells a claimed slot from a published one, and from no claim at all")
    func producerClaimIsTraceable() throws {
        let shared = try RingSegment("ring-claims", capacity: 2)
        #expect(!shared.ring.lastClaimPublished(by: 0), "nothing claimed yet")
        let slot = try #require(shared.ring.tryClaimForWriting(owner: 0))
        #expect(shared.ring.slotHeld(by: 0).map { ($0.writing, $0.slot.position) } ?? (false, 99) == (true, 0))
        #expect(!shared.ring.lastClaimPublished(by: 0), "claimed, not published")
        #expect(shared.consume() == nil, "a slot being written is not handed to consumers")
        slot.items.storeBytes(of: Int64(7), as: Int64.self)
        slot.count = 1
        shared.ring.publish(slot, nowNanos: MonotonicClock.nanoseconds)
        #expect(shared.ring.lastClaimPublished(by: 0))
        #expect(shared.ring.slotHeld(by: 0) == nil)
        #expect(shared.ring.length == 1)
        #expect(shared.consume() == 7)
    }

    @Test("capacity bounds what is published and not yet taken, at any capacity, over many rounds", arguments: [1, 3, 10])
    func capacityBounds(capacity: Int) throws {
        let shared = try RingSegment("ring-bounds", capacity: capacity)
        var next: Int64 = 1, expected: Int64 = 1
        for _ in 0..<50 {
            for _ in 0..<capacity { shared.produce(next); next += 1 }
            #expect(shared.ring.length == capacity)
            #expect(shared.ring.tryClaimForWriting(owner: 0) == nil, "a full ring gives no slot")
            for _ in 0..<capacity {
                #expect(shared.consume() == expected)
                expected += 1
            }
            #expect(shared.consume() == nil)
        }
    }

    @Test("waiting on an empty ring ends at its timeout")
    func waitTimesOut() throws {
        let shared = try RingSegment("ring-timeout", capacity: 2)
        let start = MonotonicClock.nanoseconds
        #expect(shared.ring.claimForReading(owner: 1, timeoutNanos: 20_000_000) == nil)
        #expect(MonotonicClock.nanoseconds - start >= 20_000_000)
    }

    @Test("a closed ring hands out what is left, then returns at once instead of sleeping")
    func closedRingDoesNotSleep() throws {
        let shared = try RingSegment("ring-closed", capacity: 4)
        shared.produce(5)
        shared.ring.close()
        #expect(shared.ring.isClosed)
        #expect(shared.ring.claimForReading(owner: 1, timeoutNanos: 30_000_000_000).map { $0.items.load(as: Int64.self) } == 5)
        let start = MonotonicClock.nanoseconds
        #expect(shared.ring.claimForReading(owner: 1, timeoutNanos: 30_000_000_000) == nil)
        #expect(MonotonicClock.nanoseconds - start < 10_000_000_000, "returned without waiting out its 30 s")
    }

    @Test("attach refuses memory that holds no ring")
    func attachChecksMagic() throws {
        let name = TestNames.unique("ring-none")
        let segment = try SharedSegment.create(name: name, size: 4096)
        defer {
            SharedSegment.unlink(name: name)
            withExtendedLifetime(segment) {}
        }
        #expect(throws: IPCError.self) { try SharedRing.attach(at: segment.base, available: segment.size) }
    }
}
