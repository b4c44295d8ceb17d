import PoolIPC
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A message with mixed field sizes and padding, as the daemon's queues carry.
private struct Sample: BitwiseCopyable, Equatable {
    var job: Int64
    var slot: UInt32
    var flags: UInt8
    var elapsed: Double
}

@Suite("MessageQueue")
struct MessageQueueTests {
    @Test("create, send and receive a BitwiseCopyable struct in one process")
    func sendAndReceiveInProcess() throws {
        let name = TestNames.unique("mq")
        let queue = try MessageQueue.create(name: name, depth: 4, messageSize: MemoryLayout<Sample>.size, nonBlocking: true)
        defer {
            queue.close()
            MessageQueue.unlink(name: name)
        }
        #expect(queue.depth == 4)
        #expect(queue.messageSize == MemoryLayout<Sample>.size)

        let first = Sample(job: 42, slot: 7, flags: 0b101, elapsed: 1.5)
        let second = Sample(job: -1, slot: .max, flags: 0, elapsed: -0.25)
        try queue.send(first)
        try queue.send(second)
        #expect(queue.currentDepth == 2)

        #expect(try queue.receive(Sample.self) == first)
        #expect(try queue.receive(Sample.self) == second)
        #expect(queue.currentDepth == 0)
    }

    @Test("a non-blocking receive on an empty queue returns nil")
    func nonBlockingReceiveOnEmptyQueue() throws {
        let name = TestNames.unique("mq-empty")
        let queue = try MessageQueue.create(name: name, depth: 2, messageSize: MemoryLayout<Int64>.size, nonBlocking: true)
        defer {
            queue.close()
            MessageQueue.unlink(name: name)
        }
        #expect(try queue.receive(Int64.self) == nil)
    }

    @Test("a message of another size is an error, not a misread value")
    func wrongMessageSizeThrows() throws {
        let name = TestNames.unique("mq-size")
        let queue = try MessageQueue.create(name: name, depth: 2, messageSize: MemoryLayout<Int64>.size, nonBlocking: true)
        defer {
            queue.close()
            MessageQueue.unlink(name: name)
        }
        try queue.send(Int64(7))
        let error = #expect(throws: IPCError.self) { try queue.receive(Int32.self) }
        #expect(error?.errno == EBADMSG)
    }

    @Test("a message sent by another process is received")
    func messageFromAnotherProcess() throws {
        let name = TestNames.unique("mq-peer")
        let queue = try MessageQueue.create(name: name, depth: 2, messageSize: MemoryLayout<Int64>.size)
        defer {
            queue.close()
            MessageQueue.unlink(name: name)
        }
        let result = try Probe.run("mq-send", name, "-4242424242")
        try #require(result.exit == .exited(0), "ipc-probe: \(result.exit); stderr: \(result.standardError)")

        let deadline = MonotonicClock.realtimeNanoseconds + 10_000_000_000
        let received = try queue.receive(Int64.self, deadlineRealtimeNanos: deadline)
        #expect(received == -4_242_424_242)
        #expect(queue.currentDepth == 0)
    }

    @Test("creating a queue with a name in use fails")
    func createExistingNameFails() throws {
        let name = TestNames.unique("mq-excl")
        let queue = try MessageQueue.create(name: name, depth: 1, messageSize: 8)
        defer {
            queue.close()
            MessageQueue.unlink(name: name)
        }
        let error = #expect(throws: IPCError.self) {
            let second = try MessageQueue.create(name: name, depth: 1, messageSize: 8)
            second.close()
        }
        #expect(error?.errno == EEXIST)
    }

    @Test("a queue deeper than fs.mqueue.msg_max fails with an error naming the limit")
    func depthAboveSystemLimit() throws {
        // With CAP_SYS_RESOURCE the kernel allows queues up to HARD_MSGMAX: there would be no failure to see.
        try #require(!Kernel.hasSysResourceCapability, "run the tests without CAP_SYS_RESOURCE (as root on these machines)")
        let limit = SystemLimits.messageQueueMaxDepth
        let name = TestNames.unique("mq-deep")
        defer { MessageQueue.unlink(name: name) }  // in case it was created after all
        let error = #expect(throws: IPCError.self) {
            let queue = try MessageQueue.create(name: name, depth: limit + 1, messageSize: 8)
            queue.close()
        }
        #expect(error?.errno == EINVAL)
        let description = error?.description ?? ""
        #expect(description.contains("/proc/sys/fs/mqueue/msg_max = \(limit)"), "\(description)")
        #expect(description.contains("depth \(limit + 1)"), "\(description)")
    }
}
