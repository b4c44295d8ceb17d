import Atomics
import CPooldShim
import PoolIPC
import Testing

/// Swift's view of one layout of PooldLayouts.h: its size, and each field's offset by key path
/// (nil when Swift cannot address the field so, which `field(_:)` would trap on) and size.
private struct LayoutView {
    struct Field {
        let name: String
        let offset: Int?
        let size: Int
    }

    let name: String
    let size: Int
    let fields: [Field]

    init<Layout>(_ type: Layout.Type, _ fields: [FieldView<Layout>]) {
        name = String(describing: type)
        size = MemoryLayout<Layout>.size
        self.fields = fields.map { Field(name: $0.name, offset: $0.offset, size: $0.size) }
    }
}

private struct FieldView<Layout> {
    let name: String
    let offset: Int?
    let size: Int

    init<Value>(_ name: String, _ path: KeyPath<Layout, Value>) {
        self.name = name
        offset = MemoryLayout<Layout>.offset(of: path)
        size = MemoryLayout<Value>.size
    }
}

/// The production layouts: what Swift's importer makes of each C struct is what C compiled, field
/// by field, and the offsets the code and its notes rely on hold.
@Suite("SharedLayout")
struct SharedLayoutTests {
    /// Every layout and field Swift reaches (all of them but the reserved bytes).
    private static let swiftViews: [LayoutView] = [
        LayoutView(pool_job_header.self, [
            .init("magic", \.magic),
            .init("kind", \.kind),
            .init("participants", \.participants),
            .init("cancel", \.cancel),
            .init("barrier", \.barrier),
            .init("running", \.running),
            .init("go", \.go),
        ]),
        LayoutView(pool_job_participant.self, [
            .init("done", \.done),
            .init("startedNanos", \.startedNanos),
            .init("finishedNanos", \.finishedNanos),
            .init("pid", \.pid),
            .init("slot", \.slot),
            .init("extra", \.extra),
            .init("gateStamp", \.gateStamp),
        ]),
        LayoutView(pool_scoreboard_header.self, [
            .init("magic", \.magic),
            .init("version", \.version),
            .init("pid", \.pid),
            .init("capacity", \.capacity),
        ]),
        LayoutView(pool_scoreboard_record.self, [
            .init("pid", \.pid),
            .init("jobID", \.jobID),
            .init("heartbeat", \.heartbeat),
        ]),
        LayoutView(pool_counter_area.self, [
            .init("mode", \.mode),
            .init("split", \.split),
            .init("iterations", \.iterations),
            .init("start", \.start),
            .init("counter", \.counter),
            .init("pendingParticipant", \.pendingParticipant),
            .init("pendingBefore", \.pendingBefore),
            .init("pendingDone", \.pendingDone),
            .init("mutex", \.mutex),
        ]),
        LayoutView(pool_tasks_area.self, [
            .init("count", \.count),
            .init("createdNanos", \.createdNanos),
        ]),
        LayoutView(pool_task_record.self, [
            .init("slot", \.slot),
            .init("pid", \.pid),
            .init("startedNanos", \.startedNanos),
            .init("participant", \.participant),
        ]),
        LayoutView(pool_event_area.self, [
            .init("timeout", \.timeout),
            .init("waiters", \.waiters),
            .init("event", \.event),
            .init("setNanos", \.setNanos),
        ]),
        LayoutView(pool_event_record.self, [
            .init("received", \.received),
            .init("timeouts", \.timeouts),
            .init("wokeNanos", \.wokeNanos),
        ]),
        LayoutView(pool_append_area.self, [
            .init("memory", \.memory),
            .init("length", \.length),
            .init("mutex", \.mutex),
        ]),
        LayoutView(pool_append_writer.self, [
            .init("character", \.character),
            .init("count", \.count),
            .init("interval", \.interval),
            .init("copyOffset", \.copyOffset),
        ]),
        LayoutView(pool_lockcell_area.self, [
            .init("increments", \.increments),
            .init("pauseLow", \.pauseLow),
            .init("pauseHigh", \.pauseHigh),
            .init("seed", \.seed),
            .init("counter", \.counter),
            .init("finished", \.finished),
            .init("traceNext", \.traceNext),
            .init("mutex", \.mutex),
        ]),
        LayoutView(pool_lockcell_trace_entry.self, [
            .init("step", \.step),
            .init("participant", \.participant),
            .init("value", \.value),
            .init("time", \.time),
        ]),
        LayoutView(pool_prodcons_area.self, [
            .init("items", \.items),
            .init("capacity", \.capacity),
            .init("payloadBytes", \.payloadBytes),
            .init("batch", \.batch),
            .init("seed", \.seed),
            .init("producers", \.producers),
            .init("trace", \.trace),
            .init("transport", \.transport),
            .init("produceLow", \.produceLow),
            .init("produceHigh", \.produceHigh),
            .init("consumeLow", \.consumeLow),
            .init("consumeHigh", \.consumeHigh),
            .init("consumed", \.consumed),
            .init("traceNext", \.traceNext),
        ]),
        LayoutView(pool_prodcons_stats.self, [
            .init("count", \.count),
            .init("sum", \.sum),
            .init("waits", \.waits),
            .init("countBefore", \.countBefore),
            .init("sumBefore", \.sumBefore),
            .init("recovered", \.recovered),
            .init("receives", \.receives),
        ]),
        LayoutView(pool_latency_histogram.self, [
            .init("counts", \.counts),
            .init("maximum", \.maximum),
        ]),
        LayoutView(pool_prodcons_parked.self, [
            .init("state", \.state),
            .init("items", \.items),
            .init("sum", \.sum),
        ]),
        LayoutView(pool_prodcons_trace_entry.self, [
            .init("kind", \.kind),
            .init("participant", \.participant),
            .init("value", \.value),
            .init("queueLength", \.queueLength),
            .init("time", \.time),
        ]),
        LayoutView(pool_prodcons_message_header.self, [
            .init("producer", \.producer),
            .init("count", \.count),
            .init("enqueuedNanos", \.enqueuedNanos),
        ]),
        LayoutView(pool_ring_header.self, [
            .init("magic", \.magic),
            .init("version", \.version),
            .init("capacity", \.capacity),
            .init("slot_bytes", \.slot_bytes),
            .init("owners", \.owners),
            .init("closed", \.closed),
            .init("tail", \.tail),
            .init("head", \.head),
            .init("not_empty", \.not_empty),
            .init("consumers_waiting", \.consumers_waiting),
            .init("not_full", \.not_full),
            .init("producers_waiting", \.producers_waiting),
        ]),
        LayoutView(pool_ring_hand.self, [
            .init("claimed", \.claimed),
        ]),
        LayoutView(pool_ring_slot.self, [
            .init("state", \.state),
            .init("enqueued_ns", \.enqueued_ns),
            .init("producer", \.producer),
            .init("count", \.count),
        ]),
    ]

    /// C's side: the table shim.c builds with sizeof and offsetof.
    private static var cEntries: [(layout: String, field: String, offset: Int, size: Int)] {
        var count = 0
        let entries = pool_layout_entries(&count)!
        return (0..<count).map { index in
            let entry = entries[index]
            return (String(cString: entry.layout), String(cString: entry.field), entry.offset, entry.size)
        }
    }

    @Test("every layout has the same size in Swift and in C, and every field the same offset and size")
    func swiftAndCAgree() {
        let views = Dictionary(uniqueKeysWithValues: Self.swiftViews.map { ($0.name, $0) })
        var seen: Set<String> = []
        for entry in Self.cEntries {
            guard let view = views[entry.layout] else {
                Issue.record("\(entry.layout) is not in Swift's list: add it")
                continue
            }
            if entry.field.isEmpty {
                #expect(view.size == entry.size, "\(entry.layout): \(view.size) bytes in Swift, \(entry.size) in C")
                seen.insert(entry.layout)
                continue
            }
            guard let field = view.fields.first(where: { $0.name == entry.field }) else {
                Issue.record("\(entry.layout).\(entry.field) is not in Swift's list: add it")
                continue
            }
            #expect(field.offset == entry.offset, "\(entry.layout).\(entry.field): at \(String(describing: field.offset)) in Swift, \(entry.offset) in C")
            #expect(field.size == entry.size, "\(entry.layout).\(entry.field): \(field.size) bytes in Swift, \(entry.size) in C")
            seen.insert(entry.layout + "." + entry.field)
        }
        let listed = Set(Self.swiftViews.flatMap { view in [view.name] + view.fields.map { view.name + "." + $0.name } })
        #expect(listed.subtracting(seen).isEmpty, "in Swift's list but not in C's table: \(listed.subtracting(seen).sorted())")
    }

    @Test("the offsets the code and its notes name")
    func documentedOffsets() {
        // The counter on a cache line of its own, the locked mode's intent beside it, the mutex on the next.
        #expect(MemoryLayout<pool_counter_area>.offset(of: \.counter) == 64)
        #expect(MemoryLayout<pool_counter_area>.offset(of: \.pendingParticipant) == 72)
        #expect(MemoryLayout<pool_counter_area>.offset(of: \.pendingBefore) == 80)
        #expect(MemoryLayout<pool_counter_area>.offset(of: \.pendingDone) == 88)
        #expect(MemoryLayout<pool_counter_area>.offset(of: \.mutex) == 128)
        // The start gate.
        #expect(MemoryLayout<pool_job_header>.offset(of: \.running) == 20)
        #expect(MemoryLayout<pool_job_header>.offset(of: \.go) == 24)
        #expect(MemoryLayout<pool_job_participant>.offset(of: \.gateStamp) == 48)
        // What the stale-instance cleaner reads of a scoreboard another build may have written.
        #expect(MemoryLayout<pool_scoreboard_header>.offset(of: \.magic) == 0)
        #expect(MemoryLayout<pool_scoreboard_header>.offset(of: \.pid) == 8)
        #expect(MemoryLayout<pool_scoreboard_header>.offset(of: \.capacity) == 12)
        #expect(MemoryLayout<pool_scoreboard_record>.offset(of: \.pid) == 0)
        #expect(MemoryLayout<pool_scoreboard_record>.offset(of: \.jobID) == 8)
        // The queue message's header, and records a cache line each.
        #expect(MemoryLayout<pool_prodcons_message_header>.size == 16)
        for stride in [MemoryLayout<pool_job_header>.stride, MemoryLayout<pool_job_participant>.stride,
                       MemoryLayout<pool_scoreboard_header>.stride, MemoryLayout<pool_scoreboard_record>.stride,
                       MemoryLayout<pool_prodcons_stats>.stride, MemoryLayout<pool_prodcons_parked>.stride] {
            #expect(stride == Int(POOL_CACHE_LINE))
        }
    }

    @Test("a field's address is its layout's plus C's offset, and an atomic over it writes those bytes")
    func fieldsAddressTheirBytes() {
        let area = UnsafeMutablePointer<pool_counter_area>.allocate(capacity: 1)
        defer { area.deallocate() }
        area.initialize(to: pool_counter_area())
        let raw = UnsafeMutableRawPointer(area)
        #expect(UnsafeMutableRawPointer(area.field(\.counter)) == raw + 64)
        area.atomic(\.pendingBefore).store(-42, ordering: .releasing)
        #expect(raw.load(fromByteOffset: 80, as: Int64.self) == -42)
        #expect(area.end == raw + MemoryLayout<pool_counter_area>.size)
        #expect(raw.layout(pool_counter_area.self) == area)
    }
}
