import Atomics

/// Field access for the layouts declared in the shim's header (`PooldLayouts.h`): a segment's
/// memory is addressed through those types and their field names, never through byte offsets.
extension UnsafeMutablePointer {
    /// The address of one field of the pointee.
    @inlinable
    public func field<Field>(_ path: KeyPath<Pointee, Field>) -> UnsafeMutablePointer<Field> {
        guard let offset = MemoryLayout<Pointee>.offset(of: path) else {
            preconditionFailure("\(path) is not a stored field of \(Pointee.self)")
        }
        return (UnsafeMutableRawPointer(self) + offset).assumingMemoryBound(to: Field.self)
    }

    /// An atomic over one field of the pointee: how a field shared between processes is read and
    /// written while others may touch it.
    @inlinable
    public func atomic<Value: AtomicValue>(_ path: KeyPath<Pointee, Value>) -> UnsafeAtomic<Value> {
        UnsafeAtomic(at: UnsafeMutableRawPointer(field(path)).assumingMemoryBound(to: Value.AtomicRepresentation.self))
    }

    /// The memory right after the pointee, where a layout's variable part (its records) begins.
    @inlinable
    public var end: UnsafeMutableRawPointer { UnsafeMutableRawPointer(self + 1) }
}

extension UnsafeMutableRawPointer {
    /// This memory seen as a layout of the shim's header.
    @inlinable
    public func layout<Layout>(_ type: Layout.Type) -> UnsafeMutablePointer<Layout> {
        assumingMemoryBound(to: type)
    }
}
