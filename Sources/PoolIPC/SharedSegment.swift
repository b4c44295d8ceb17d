#if canImport(Glibc)
import Glibc
#endif

/// A POSIX shared-memory object (`shm_open`) mapped into this process. The mapping is removed when
/// the value is released; the name stays until `unlink(name:)`, so that the creator decides when
/// the object disappears.
public final class SharedSegment: @unchecked Sendable {
    // @unchecked: the mapping is shared memory by design; every field placed in it is accessed
    // through atomics, futexes or a process-shared mutex, never through plain Swift properties.
    public let name: String
    public let size: Int
    public let base: UnsafeMutableRawPointer

    /// Creates a new, zero-filled segment. Fails if the name exists: names carry the instance prefix
    /// and a job or slot number, so an existing one means a leak or a second instance, never reuse.
    public static func create(name: String, size: Int) throws(IPCError) -> SharedSegment {
        let fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw IPCError("shm_open(\(name))", hint: Glibc.errno == EEXIST ? "a segment of that name exists already" : nil)
        }
        defer { close(fd) }
        guard ftruncate(fd, off_t(size)) == 0 else {
            let error = IPCError("ftruncate(\(name), \(size))")
            shm_unlink(name)
            throw error
        }
        do {
            return try SharedSegment(name: name, descriptor: fd, size: size)
        } catch {
            shm_unlink(name)
            throw error
        }
    }

    /// Maps an existing segment, whatever its size.
    public static func open(name: String) throws(IPCError) -> SharedSegment {
        let fd = shm_open(name, O_RDWR | O_CLOEXEC, 0)
        guard fd >= 0 else { throw IPCError("shm_open(\(name))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw IPCError("fstat(\(name))") }
        return try SharedSegment(name: name, descriptor: fd, size: Int(info.st_size))
    }

    private init(name: String, descriptor: Int32, size: Int) throws(IPCError) {
        guard let mapping = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, descriptor, 0),
              mapping != MAP_FAILED else {
            throw IPCError("mmap(\(name), \(size) bytes)")
        }
        self.name = name
        self.size = size
        self.base = mapping
    }

    deinit {
        munmap(base, size)
    }

    /// A pointer to a value at `offset`, which must be aligned for `T`.
    @inlinable
    public func pointer<T>(at offset: Int, as type: T.Type) -> UnsafeMutablePointer<T> {
        precondition(offset >= 0 && offset + MemoryLayout<T>.size <= size, "offset \(offset) outside segment \(name)")
        precondition(offset % MemoryLayout<T>.alignment == 0, "misaligned offset \(offset) for \(T.self)")
        return (base + offset).assumingMemoryBound(to: T.self)
    }

    /// Removes the name. Returns false if there was none.
    @discardableResult
    public static func unlink(name: String) -> Bool {
        shm_unlink(name) == 0
    }
}
