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
        // tmpfs allocates a page when it is first touched, and a page it cannot allocate is a
        // SIGBUS in whoever touches it (the daemon reading a trace, a worker writing one). Reserved
        // here, a shortage is an error now instead. posix_fallocate returns the error; errno is untouched.
        let reserved = posix_fallocate(fd, 0, off_t(size))
        guard reserved == 0 else {
            shm_unlink(name)
            throw IPCError("posix_fallocate(\(name), \(size) bytes)", errno: reserved,
                           hint: reserved == ENOSPC ? SharedMemorySpace.shortageHint(needed: size) : nil)
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

    /// Zero-fills the mapping from `offset` on, as a new segment is: for reusing one (its pages are
    /// allocated already, so this cannot fault on a full /dev/shm).
    public func zero(from offset: Int = 0) {
        precondition(offset >= 0 && offset <= size, "offset \(offset) outside segment \(name)")
        memset(base + offset, 0, size - offset)
    }

    /// Removes the name. Returns false if there was none.
    @discardableResult
    public static func unlink(name: String) -> Bool {
        shm_unlink(name) == 0
    }
}

/// The room left for shared memory: /dev/shm, where glibc's shm_open puts its objects.
public enum SharedMemorySpace {
    public static let directory = "/dev/shm"

    /// Bytes that can still be allocated there, and its size; nil when it cannot be asked.
    public static func available() -> (free: Int, total: Int)? {
        var info = statvfs()
        guard statvfs(directory, &info) == 0 else { return nil }
        let block = Int(info.f_frsize)
        return (Int(info.f_bavail) * block, Int(info.f_blocks) * block)
    }

    /// What a segment of `needed` bytes occupies: tmpfs allocates whole pages.
    public static func pages(_ needed: Int) -> Int {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        return (needed + page - 1) / page * page
    }

    /// Why `needed` bytes do not fit, and what to do.
    public static func shortageHint(needed: Int) -> String {
        let free = available().map { "\($0.free) of its \($0.total) bytes are free" } ?? "its free space is unknown"
        return "\(directory) is full: this needs \(pages(needed)) bytes and \(free); free some, or enlarge it (mount -o remount,size=... \(directory))"
    }
}
