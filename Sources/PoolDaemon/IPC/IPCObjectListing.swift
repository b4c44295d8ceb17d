#if canImport(Glibc)
import Glibc
#endif

/// The POSIX IPC objects this process can see: shared memory in /dev/shm (always: glibc's
/// shm_open creates files there) and message queues in /dev/mqueue (only where the mqueue
/// filesystem is mounted; there is no other way to list queues). Names are as shm_open and
/// mq_open take them, with the leading slash.
struct IPCObjectListing {
    static let sharedMemoryDirectory = "/dev/shm"
    static let queueDirectory = "/dev/mqueue"
    static let scoreboardSuffix = ".scoreboard"

    var sharedMemory: [String]
    /// nil when no mqueue filesystem is mounted on /dev/mqueue.
    var queues: [String]?

    /// What is there now.
    static func current() -> IPCObjectListing {
        IPCObjectListing(sharedMemory: entries(of: sharedMemoryDirectory),
                         queues: queuesAreListable ? entries(of: queueDirectory) : nil)
    }

    /// The queues in this IPC namespace that have a name, or nil when they cannot be listed.
    static func queueCount() -> Int? {
        queuesAreListable ? entries(of: queueDirectory).count : nil
    }

    /// Whether the mqueue filesystem is what is mounted on /dev/mqueue (the last mount there wins:
    /// it hides those beneath).
    static var queuesAreListable: Bool {
        guard let file = fopen("/proc/self/mounts", "r") else { return false }
        defer { fclose(file) }
        var listable = false
        var buffer = [CChar](repeating: 0, count: 4096)
        while fgets(&buffer, Int32(buffer.count), file) != nil {
            let line = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let fields = line.split(separator: " ")
            if fields.count >= 3, fields[1] == queueDirectory { listable = fields[2] == "mqueue" }
        }
        return listable
    }

    /// The prefixes of every instance that has a scoreboard (live, starting or dead): names such as
    /// `/poold-4711.scoreboard` whose stem is a valid IPC prefix. Anything else in /dev/shm is not
    /// poold's to judge.
    ///
    /// Read after the objects themselves (`current()`), so that an object an instance created
    /// meanwhile still finds its owner here: every instance creates its scoreboard first and
    /// removes it last.
    static func scoreboardPrefixes() -> [String] {
        entries(of: sharedMemoryDirectory).compactMap { name in
            guard name.hasSuffix(scoreboardSuffix) else { return nil }
            let prefix = String(name.dropLast(scoreboardSuffix.count))
            return IPCNames.problem(with: prefix) == nil ? prefix : nil
        }
    }

    /// The objects that carry `prefix`: named `<prefix>.` followed by anything, unless a longer
    /// prefix among `prefixes` claims them (`/poold-a.b.events` belongs to the instance
    /// `/poold-a.b`, not to `/poold-a`: prefixes may contain dots).
    func objects(of prefix: String, among prefixes: [String]) -> (sharedMemory: [String], queues: [String]) {
        let longer = prefixes.filter { $0.count > prefix.count && $0.hasPrefix(prefix + ".") }
        func belongs(_ name: String) -> Bool {
            name.hasPrefix(prefix + ".") && !longer.contains { name.hasPrefix($0 + ".") }
        }
        return (sharedMemory.filter(belongs), (queues ?? []).filter(belongs))
    }

    /// The entries of a directory as IPC names (`/` + file name).
    private static func entries(of directory: String) -> [String] {
        guard let stream = opendir(directory) else { return [] }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append("/" + name) }
        }
        return names
    }
}
