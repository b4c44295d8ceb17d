import Atomics
import PoolIPC
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("SharedSegment")
struct SharedSegmentTests {
    @Test("a value added by another process is seen by the creator")
    func sharedBetweenProcesses() throws {
        var layout = SegmentLayout()
        _ = layout.reserve(UInt32.self)  // something before it, so the offset is not 0
        let counterOffset = layout.reserve(UnsafeAtomic<Int64>.Storage.self)
        let name = TestNames.unique("shm")
        let segment = try SharedSegment.create(name: name, size: layout.size)
        defer {
            SharedSegment.unlink(name: name)
            withExtendedLifetime(segment) {}
        }
        #expect(segment.size == layout.size)
        let counter = UnsafeAtomic<Int64>(at: segment.pointer(at: counterOffset, as: UnsafeAtomic<Int64>.Storage.self))
        #expect(counter.load(ordering: .acquiring) == 0, "a new segment is zero-filled")
        counter.store(37, ordering: .releasing)

        let first = try Probe.run("segment-add", name, "\(counterOffset)", "5")
        try #require(first.exit == .exited(0), "ipc-probe: \(first.exit); stderr: \(first.standardError)")
        #expect(first.lines == ["42"], "the probe saw the value this process stored")
        #expect(counter.load(ordering: .acquiring) == 42)

        let second = try Probe.run("segment-add", name, "\(counterOffset)", "-50")
        try #require(second.exit == .exited(0), "ipc-probe: \(second.exit); stderr: \(second.standardError)")
        #expect(second.lines == ["-8"])
        #expect(counter.load(ordering: .acquiring) == -8)
    }

    @Test("opening maps the same memory, with the creator's size")
    func openMapsTheSameObject() throws {
        let name = TestNames.unique("shm-open")
        let created = try SharedSegment.create(name: name, size: 4096)
        defer {
            SharedSegment.unlink(name: name)
            withExtendedLifetime(created) {}
        }
        let opened = try SharedSegment.open(name: name)
        #expect(opened.size == 4096)
        #expect(opened.base != created.base)
        let word = UnsafeAtomic<Int64>(at: created.pointer(at: 128, as: UnsafeAtomic<Int64>.Storage.self))
        let alias = UnsafeAtomic<Int64>(at: opened.pointer(at: 128, as: UnsafeAtomic<Int64>.Storage.self))
        word.store(0x1234_5678_9abc, ordering: .releasing)
        #expect(alias.load(ordering: .acquiring) == 0x1234_5678_9abc)
        withExtendedLifetime(opened) {}
    }

    @Test("creating a segment with a name in use fails (O_EXCL)")
    func createExistingNameFails() throws {
        let name = TestNames.unique("shm-excl")
        let segment = try SharedSegment.create(name: name, size: 64)
        defer {
            SharedSegment.unlink(name: name)
            withExtendedLifetime(segment) {}
        }
        let error = #expect(throws: IPCError.self) {
            _ = try SharedSegment.create(name: name, size: 64)
        }
        #expect(error?.errno == EEXIST)
        #expect(error?.description.contains("exists already") == true, "\(error?.description ?? "")")
    }

    @Test("opening a segment that does not exist fails, here and in the probe")
    func openMissingFails() throws {
        let name = TestNames.unique("shm-missing")
        let error = #expect(throws: IPCError.self) { _ = try SharedSegment.open(name: name) }
        #expect(error?.errno == ENOENT)

        let result = try Probe.run("segment-add", name, "0", "1")
        #expect(result.exit == .exited(1))
        #expect(result.lines.isEmpty)
        #expect(result.standardError.contains(name), "\(result.standardError)")
    }

    @Test("unlink reports whether there was a name to remove")
    func unlinkReportsMissingName() throws {
        let name = TestNames.unique("shm-unlink")
        let segment = try SharedSegment.create(name: name, size: 64)
        withExtendedLifetime(segment) {}
        #expect(SharedSegment.unlink(name: name))
        #expect(!SharedSegment.unlink(name: name))
    }
}
