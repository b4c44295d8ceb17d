import PoolIPC
import Testing

private struct Triple {
    var a: UInt8
    var b: Int64
    var c: UInt16
}

@Suite("SegmentLayout")
struct SegmentLayoutTests {
    /// A reserved field: where it starts, how many bytes, and the alignment it must have.
    private struct Field {
        let offset: Int
        let length: Int
        let alignment: Int
    }

    /// A layout mixing types, counts, explicit alignments and raw bytes; what each call reserved.
    private static func sampleLayout() -> (SegmentLayout, [Field]) {
        var layout = SegmentLayout()
        var fields: [Field] = []
        func add<T>(_ type: T.Type, count: Int = 1, alignment: Int? = nil) {
            let offset = alignment.map { layout.reserve(type, count: count, alignment: $0) } ?? layout.reserve(type, count: count)
            fields.append(Field(offset: offset, length: MemoryLayout<T>.stride * count,
                                alignment: max(alignment ?? 64, MemoryLayout<T>.alignment)))
        }
        func addBytes(_ count: Int, alignment: Int? = nil) {
            let offset = alignment.map { layout.reserveBytes(count, alignment: $0) } ?? layout.reserveBytes(count)
            fields.append(Field(offset: offset, length: count, alignment: alignment ?? 64))
        }
        add(UInt32.self)
        add(UInt8.self, count: 3, alignment: 1)
        add(Int64.self, alignment: 1)              // asked for less than the type needs
        addBytes(RobustMutex.size)
        add(Triple.self, count: 5, alignment: 8)
        addBytes(13, alignment: 16)
        add(UInt16.self, count: 7, alignment: 2)
        add(Double.self, count: 100)
        addBytes(1, alignment: 1)
        add(UInt32.self, alignment: 4096)
        return (layout, fields)
    }

    @Test("every offset is aligned for its type and for the alignment asked for")
    func offsetsAreAligned() {
        let (_, fields) = Self.sampleLayout()
        for field in fields {
            #expect(field.offset % field.alignment == 0, "offset \(field.offset) not aligned to \(field.alignment)")
        }
    }

    @Test("fields do not overlap and all fit in the size")
    func fieldsDoNotOverlap() {
        let (layout, fields) = Self.sampleLayout()
        let ordered = fields.sorted { $0.offset < $1.offset }
        for (before, after) in zip(ordered, ordered.dropFirst()) {
            #expect(before.offset + before.length <= after.offset,
                    "[\(before.offset), +\(before.length)) overlaps [\(after.offset), +\(after.length))")
        }
        let end = fields.map { $0.offset + $0.length }.max() ?? 0
        #expect(layout.size >= end)
        #expect(layout.size == fields.last.map { $0.offset + $0.length })
    }

    @Test("by default, fields get cache lines of their own")
    func defaultAlignmentIsACacheLine() {
        var layout = SegmentLayout()
        let first = layout.reserve(UInt32.self)
        let second = layout.reserve(UInt32.self)
        let third = layout.reserveBytes(1)
        #expect(first == 0)
        #expect(second == 64)
        #expect(third == 128)
        #expect(layout.size == 129)
    }

    @Test("the same sequence of reservations gives the same offsets (every process computes the same layout)")
    func layoutIsDeterministic() {
        let (firstLayout, first) = Self.sampleLayout()
        let (secondLayout, second) = Self.sampleLayout()
        #expect(first.map(\.offset) == second.map(\.offset))
        #expect(firstLayout.size == secondLayout.size)
    }

    @Test("an empty layout has size zero and the first field starts at zero")
    func emptyLayout() {
        var layout = SegmentLayout()
        #expect(layout.size == 0)
        #expect(layout.reserve(Int64.self, count: 2, alignment: 8) == 0)
        #expect(layout.size == 16)
    }
}
