import Atomics
import CPooldShim
#if canImport(Glibc)
import Glibc
#endif

/// A bounded multi-producer, multi-consumer ring of fixed-size slots in shared memory (the layout
/// is `pool_ring_header` and friends in PooldLayouts.h, which says how it works). The fast path is a
/// few atomics on the slot and the counters, with no system call: a side that finds the ring full
/// or empty spins briefly, then sleeps on a futex that the other side bumps only when someone sleeps.
///
/// Every participant has an owner number (below `owners`). A slot claimed for writing or reading
/// carries its owner in its state word, so that the replacement of a process that died holding
/// one finds it with `slotHeld(by:)` and finishes it: nothing claimed is lost or taken twice.
public struct SharedRing: @unchecked Sendable {
    // @unchecked: every shared field is reached through atomics or futexes; the items in a slot
    // belong to the slot's one owner between its claim and its publish or release.
    public let capacity: UInt64
    public let slotBytes: Int
    public let owners: Int
    @usableFromInline let header: UnsafeMutablePointer<pool_ring_header>
    @usableFromInline let hands: UnsafeMutablePointer<pool_ring_hand>
    @usableFromInline let slots: UnsafeMutableRawPointer
    @usableFromInline let tail: UnsafeAtomic<UInt64>
    @usableFromInline let head: UnsafeAtomic<UInt64>
    @usableFromInline let consumersWaiting: UnsafeAtomic<UInt32>
    @usableFromInline let producersWaiting: UnsafeAtomic<UInt32>
    @usableFromInline let notEmpty: FutexWord
    @usableFromInline let notFull: FutexWord
    @usableFromInline let closed: UnsafeAtomic<UInt32>

    /// Most owners and positions the state word can tell apart.
    public static let maxOwners = 1 << Int(POOL_RING_OWNER_BITS)
    static let maxPosition: UInt64 = 1 << (64 - UInt64(POOL_RING_POSITION_SHIFT))
    /// Rounds of `pool_cpu_relax` a side spins on a full or empty ring before it sleeps: a few
    /// microseconds, about what the other side takes to come back for its next slot.
    public static let spinRounds = 200

    /// The slot header's size: a slot's items start here.
    public static let slotHeaderBytes = MemoryLayout<pool_ring_slot>.size

    /// The stride of slots holding `itemBytes` after their header: 32 bytes (two to a cache line)
    /// when they fit, else whole cache lines, so that no slot straddles more lines than it must.
    public static func slotStride(itemBytes: Int) -> Int {
        let bytes = slotHeaderBytes + itemBytes
        guard bytes > 32 else { return 32 }
        return bytes <= 64 ? 64 : (bytes + 63) & ~63
    }

    /// Bytes a ring of `capacity` slots of `slotBytes` (a `slotStride`) with `owners` hands takes,
    /// and where it must start: a cache-line boundary.
    public static func byteSize(capacity: Int, slotBytes: Int, owners: Int) -> Int {
        MemoryLayout<pool_ring_header>.size + owners * MemoryLayout<pool_ring_hand>.size + capacity * slotBytes
    }

    public static let alignment = 64

    /// Writes an empty ring at `base` (zeroed memory of `byteSize` bytes, from a new segment).
    public static func create(at base: UnsafeMutableRawPointer, capacity: Int, slotBytes: Int, owners: Int) -> SharedRing {
        precondition(capacity >= 1 && owners >= 1 && owners <= maxOwners, "ring of \(capacity) slots for \(owners) owners")
        precondition(slotBytes >= slotHeaderBytes && slotBytes % 8 == 0, "slot of \(slotBytes) bytes")
        precondition(Int(bitPattern: base) % alignment == 0, "ring not on a cache line")
        let header = base.assumingMemoryBound(to: pool_ring_header.self)
        header.pointee.capacity = UInt64(capacity)
        header.pointee.slot_bytes = UInt64(slotBytes)
        header.pointee.owners = UInt64(owners)
        header.pointee.version = POOL_RING_VERSION
        let ring = SharedRing(header: header)
        for index in 0..<capacity {
            ring.stateWord(ring.slot(at: UInt64(index))).store(Self.state(UInt64(index), POOL_RING_FREE), ordering: .relaxed)
        }
        // Last: a ring that says it is one is complete.
        UnsafeAtomic<UInt32>(at: UnsafeMutableRawPointer(header.pointer(to: \.magic)!)
            .assumingMemoryBound(to: UInt32.AtomicRepresentation.self)).store(POOL_RING_MAGIC, ordering: .releasing)
        return ring
    }

    /// The ring written at `base` by `create`, checked: `available` is the room from `base` on.
    public static func attach(at base: UnsafeMutableRawPointer, available: Int) throws(IPCError) -> SharedRing {
        guard available >= MemoryLayout<pool_ring_header>.size, Int(bitPattern: base) % alignment == 0 else {
            throw IPCError("attach ring", errno: EINVAL, hint: "no room for a ring header here")
        }
        let header = base.assumingMemoryBound(to: pool_ring_header.self)
        let magic = UnsafeAtomic<UInt32>(at: UnsafeMutableRawPointer(header.pointer(to: \.magic)!)
            .assumingMemoryBound(to: UInt32.AtomicRepresentation.self)).load(ordering: .acquiring)
        guard magic == POOL_RING_MAGIC, header.pointee.version == POOL_RING_VERSION else {
            throw IPCError("attach ring", errno: EINVAL,
                           hint: "no ring of version \(POOL_RING_VERSION) here (magic \(magic), version \(header.pointee.version))")
        }
        let ring = SharedRing(header: header)
        guard byteSize(capacity: Int(ring.capacity), slotBytes: ring.slotBytes, owners: ring.owners) <= available else {
            throw IPCError("attach ring", errno: EINVAL, hint: "the ring's header says it is larger than its segment")
        }
        return ring
    }

    private init(header: UnsafeMutablePointer<pool_ring_header>) {
        self.header = header
        capacity = header.pointee.capacity
        slotBytes = Int(header.pointee.slot_bytes)
        owners = Int(header.pointee.owners)
        let base = UnsafeMutableRawPointer(header)
        hands = (base + MemoryLayout<pool_ring_header>.size).assumingMemoryBound(to: pool_ring_hand.self)
        slots = base + MemoryLayout<pool_ring_header>.size + owners * MemoryLayout<pool_ring_hand>.size
        tail = UnsafeAtomic(at: UnsafeMutableRawPointer(header.pointer(to: \.tail)!).assumingMemoryBound(to: UInt64.AtomicRepresentation.self))
        head = UnsafeAtomic(at: UnsafeMutableRawPointer(header.pointer(to: \.head)!).assumingMemoryBound(to: UInt64.AtomicRepresentation.self))
        consumersWaiting = UnsafeAtomic(at: UnsafeMutableRawPointer(header.pointer(to: \.consumers_waiting)!)
            .assumingMemoryBound(to: UInt32.AtomicRepresentation.self))
        producersWaiting = UnsafeAtomic(at: UnsafeMutableRawPointer(header.pointer(to: \.producers_waiting)!)
            .assumingMemoryBound(to: UInt32.AtomicRepresentation.self))
        closed = UnsafeAtomic(at: UnsafeMutableRawPointer(header.pointer(to: \.closed)!).assumingMemoryBound(to: UInt32.AtomicRepresentation.self))
        notEmpty = FutexWord(at: UnsafeMutableRawPointer(header.pointer(to: \.not_empty)!))
        notFull = FutexWord(at: UnsafeMutableRawPointer(header.pointer(to: \.not_full)!))
    }

    // MARK: Slots

    /// A claimed slot: its position and its memory (header, then items). Valid until published
    /// (a producer's) or released (a consumer's).
    public struct Slot: @unchecked Sendable {
        public let position: UInt64
        public let base: UnsafeMutableRawPointer

        @usableFromInline init(position: UInt64, base: UnsafeMutableRawPointer) {
            self.position = position
            self.base = base
        }

        /// The first item's bytes.
        @inlinable public var items: UnsafeMutableRawPointer { base + SharedRing.slotHeaderBytes }

        /// The slot's header, a `pool_ring_slot`.
        @inlinable var header: UnsafeMutablePointer<pool_ring_slot> { base.layout(pool_ring_slot.self) }

        @inlinable public var count: Int {
            get { Int(header.pointee.count) }
            nonmutating set { header.pointee.count = UInt32(newValue) }
        }

        @inlinable public var producer: Int {
            get { Int(header.pointee.producer) }
            nonmutating set { header.pointee.producer = UInt32(newValue) }
        }

        /// Monotonic nanoseconds of the publish: set by `publish`.
        @inlinable public var enqueuedNanos: Int64 { header.pointee.enqueued_ns }
    }

    @inlinable @inline(__always)
    static func state(_ position: UInt64, _ phase: Int, owner: Int = 0) -> UInt64 {
        position << UInt64(POOL_RING_POSITION_SHIFT) | UInt64(owner) << UInt64(POOL_RING_OWNER_SHIFT) | UInt64(phase)
    }

    @inlinable @inline(__always)
    func slot(at position: UInt64) -> UnsafeMutableRawPointer {
        slots + Int(position % capacity) * slotBytes
    }

    @inlinable @inline(__always)
    func stateWord(_ slot: UnsafeMutableRawPointer) -> UnsafeAtomic<UInt64> {
        // The state is the slot header's first field.
        UnsafeAtomic(at: slot.assumingMemoryBound(to: UInt64.AtomicRepresentation.self))
    }

    @inlinable @inline(__always)
    func hand(_ owner: Int) -> UnsafeAtomic<UInt64> {
        UnsafeAtomic(at: UnsafeMutableRawPointer(hands + owner).assumingMemoryBound(to: UInt64.AtomicRepresentation.self))
    }

    /// Slots published and not yet claimed by a consumer, give or take the ones being claimed now
    /// (and at most the capacity: `head` may lag behind a consumer that died claiming).
    public var length: Int {
        let head = head.load(ordering: .relaxed), tail = tail.load(ordering: .relaxed)
        return tail > head ? Int(min(tail - head, capacity)) : 0
    }

    // MARK: Producing

    /// Claims the next slot for writing, or returns nil when the ring is full. The caller fills
    /// the slot's items and count, then `publish`es it.
    @inlinable @inline(__always)
    public func tryClaimForWriting(owner: Int) -> Slot? {
        let hand = hand(owner)
        // Cleared before the claim (whose compare-and-swap orders it): a hand that is set names a
        // slot this owner did claim.
        hand.store(0, ordering: .relaxed)
        var position = tail.load(ordering: .relaxed)
        while true {
            let slot = slot(at: position)
            let word = stateWord(slot)
            let state = word.load(ordering: .acquiring)
            let free = Self.state(position, Int(POOL_RING_FREE))
            if state == free {
                if word.compareExchange(expected: free, desired: Self.state(position, Int(POOL_RING_WRITING), owner: owner),
                                        ordering: .acquiringAndReleasing).exchanged {
                    hand.store(position &+ 1, ordering: .relaxed)
                    _ = tail.compareExchange(expected: position, desired: position &+ 1, ordering: .relaxed)
                    return Slot(position: position, base: slot)
                }
                continue
            }
            if state >> UInt64(POOL_RING_POSITION_SHIFT) < position {
                // The slot still holds the previous round: full, unless `tail` moved meanwhile.
                let now = tail.load(ordering: .relaxed)
                if now == position { return nil }
                position = now
                continue
            }
            // Claimed by another producer (which may have died before advancing `tail`): help.
            _ = tail.compareExchange(expected: position, desired: position &+ 1, ordering: .relaxed)
            position = tail.load(ordering: .relaxed)
        }
    }

    /// Makes a slot claimed for writing visible to consumers, waking one if any sleeps.
    @inlinable @inline(__always)
    public func publish(_ slot: Slot, nowNanos: Int64) {
        slot.header.pointee.enqueued_ns = nowNanos
        // Sequentially consistent, as the waiter's count is: either this side sees a waiter or the
        // waiter sees the slot full before it sleeps.
        stateWord(slot.base).store(Self.state(slot.position, Int(POOL_RING_FULL)), ordering: .sequentiallyConsistent)
        if consumersWaiting.load(ordering: .sequentiallyConsistent) != 0 { signal(notEmpty) }
    }

    /// Claims a slot for writing, waiting at most `timeoutNanos` for room; nil when there was none.
    public func claimForWriting(owner: Int, timeoutNanos: Int64) -> Slot? {
        wait(on: notFull, counting: producersWaiting, timeoutNanos: timeoutNanos) { tryClaimForWriting(owner: owner) }
    }

    // MARK: Consuming

    /// Claims the oldest published slot for reading, or returns nil when the ring is empty. The
    /// caller takes its items, then `release`s it.
    @inlinable @inline(__always)
    public func tryClaimForReading(owner: Int) -> Slot? {
        var position = head.load(ordering: .relaxed)
        while true {
            let slot = slot(at: position)
            let word = stateWord(slot)
            let state = word.load(ordering: .acquiring)
            let full = Self.state(position, Int(POOL_RING_FULL))
            if state == full {
                if word.compareExchange(expected: full, desired: Self.state(position, Int(POOL_RING_READING), owner: owner),
                                        ordering: .acquiringAndReleasing).exchanged {
                    _ = head.compareExchange(expected: position, desired: position &+ 1, ordering: .relaxed)
                    return Slot(position: position, base: slot)
                }
                continue
            }
            let slotPosition = state >> UInt64(POOL_RING_POSITION_SHIFT)
            let phase = Int32(truncatingIfNeeded: state & 3)
            if slotPosition < position || (slotPosition == position && phase != POOL_RING_READING) {
                // Not yet published (or the previous round is still being read): empty, unless
                // `head` moved meanwhile.
                let now = head.load(ordering: .relaxed)
                if now == position { return nil }
                position = now
                continue
            }
            // Taken by another consumer, or even released: help `head` past it.
            _ = head.compareExchange(expected: position, desired: position &+ 1, ordering: .relaxed)
            position = head.load(ordering: .relaxed)
        }
    }

    /// Frees a slot claimed for reading for the producers' next round, waking one if any sleeps.
    @inlinable @inline(__always)
    public func release(_ slot: Slot) {
        stateWord(slot.base).store(Self.state(slot.position &+ capacity, Int(POOL_RING_FREE)), ordering: .sequentiallyConsistent)
        if producersWaiting.load(ordering: .sequentiallyConsistent) != 0 { signal(notFull) }
    }

    /// Claims a slot for reading, waiting at most `timeoutNanos` for one; nil when none came, or
    /// at once when the ring is empty and closed.
    public func claimForReading(owner: Int, timeoutNanos: Int64) -> Slot? {
        wait(on: notEmpty, counting: consumersWaiting, timeoutNanos: timeoutNanos) { tryClaimForReading(owner: owner) }
    }

    /// Says that nothing more will be published (every item is in), and wakes every sleeper:
    /// a consumer that finds the ring empty then returns instead of sleeping.
    public func close() {
        closed.store(1, ordering: .sequentiallyConsistent)
        wakeAll()
    }

    public var isClosed: Bool { closed.load(ordering: .acquiring) != 0 }

    // MARK: Waiting

    @usableFromInline
    func signal(_ word: FutexWord) {
        word.atomic.wrappingIncrement(ordering: .releasing)
        word.wake(1)
    }

    /// Spins, then announces itself as a waiter, looks once more, and sleeps on `word` until the
    /// other side bumps it (or the timeout): one `attempt` after each step.
    private func wait(on word: FutexWord, counting waiters: UnsafeAtomic<UInt32>, timeoutNanos: Int64,
                      attempt: () -> Slot?) -> Slot? {
        for _ in 0..<Self.spinRounds {
            if let slot = attempt() { return slot }
            pool_cpu_relax()
        }
        waiters.wrappingIncrement(ordering: .sequentiallyConsistent)
        defer { waiters.wrappingDecrement(ordering: .sequentiallyConsistent) }
        let seen = word.atomic.load(ordering: .sequentiallyConsistent)
        if let slot = attempt() { return slot }
        // Closed after the look: `close` bumps the word after its store, so the wait below cannot miss it.
        if isClosed { return nil }
        _ = word.wait(whileEqualTo: seen, timeoutNanos: timeoutNanos)
        return attempt()
    }

    /// Wakes every sleeper on both sides, so that each looks at the ring and at why it waits
    /// (the job's end, a cancel).
    public func wakeAll() {
        notEmpty.atomic.wrappingIncrement(ordering: .releasing)
        notEmpty.wake()
        notFull.atomic.wrappingIncrement(ordering: .releasing)
        notFull.wake()
    }

    // MARK: Recovery

    /// The slot `owner` holds claimed (for writing or for reading), if any: what a process that
    /// died left unfinished, for its replacement to finish (fill and publish, or take and release).
    /// Only `owner` changes such a slot's state, so the answer stays true while `owner` does nothing.
    public func slotHeld(by owner: Int) -> (slot: Slot, writing: Bool)? {
        let ownerBits = UInt64(owner) << UInt64(POOL_RING_OWNER_SHIFT)
        let ownerMask = UInt64(Self.maxOwners - 1) << UInt64(POOL_RING_OWNER_SHIFT)
        for index in 0..<Int(capacity) {
            let slot = slots + index * slotBytes
            let state = stateWord(slot).load(ordering: .acquiring)
            let phase = Int32(truncatingIfNeeded: state & 3)
            guard phase == POOL_RING_WRITING || phase == POOL_RING_READING, state & ownerMask == ownerBits else { continue }
            return (Slot(position: state >> UInt64(POOL_RING_POSITION_SHIFT), base: slot), phase == POOL_RING_WRITING)
        }
        return nil
    }

    /// Whether `owner`'s last claim for writing was published: it claimed a slot (its hand is set)
    /// and holds none now. False when it died before claiming, or while it holds the slot.
    public func lastClaimPublished(by owner: Int) -> Bool {
        hand(owner).load(ordering: .acquiring) != 0 && slotHeld(by: owner)?.writing != true
    }
}
