import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A private IPC namespace with a /dev/shm of its own, for tests about what daemons see of each
/// other's objects: daemons started elsewhere on this machine (other suites, other checkouts) can
/// neither see nor remove what lives here, and the test sees exactly what its own daemons did.
///
/// A process started with `unshare --ipc --mount` holds it: it mounts a fresh tmpfs on /dev/shm
/// and the namespace's mqueue filesystem, then sleeps. Daemons join it with nsenter; the test
/// looks in through `/proc/<holder>/root`. Ending the holder ends the namespace.
final class IPCNamespace {
    private let holder: Process
    let pid: Int32
    /// This namespace's /dev/shm, from outside.
    let sharedMemoryDirectory: String
    /// This namespace's queues, from outside.
    let mqueueDirectory: String

    /// With `mqueueOnDevMqueue` false, /dev/mqueue shows an empty tmpfs (as where the mqueue
    /// filesystem is not mounted) and the queues are mounted elsewhere, for the test's eyes only.
    /// `smallDisk` mounts a tmpfs of that many KiB on an existing directory (seen only in the
    /// namespace): a disk that fills up, for a daemon's state directory. `sharedMemorySize` sizes
    /// its /dev/shm (a tmpfs `size=`); `queueLimits` sets the namespace's own mqueue sysctls
    /// (`queues_max`, `msg_max`, `msgsize_max`: each IPC namespace has its own).
    init(mqueueOnDevMqueue: Bool = true, smallDisk: (path: String, kilobytes: Int)? = nil, sharedMemorySize: String = "64m",
         queueLimits: [String: Int] = [:]) throws {
        let mountQueues = mqueueOnDevMqueue
            ? "mount -t mqueue none /dev/mqueue"
            : "mount -t tmpfs -o size=1m tmpfs /dev/mqueue && mkdir /dev/mqueue/hidden && mount -t mqueue none /dev/mqueue/hidden"
        let mountDisk = smallDisk.map { " && mount -t tmpfs -o size=\($0.kilobytes)k,mode=0755 tmpfs '\($0.path)'" } ?? ""
        let limits = queueLimits.sorted { $0.key < $1.key }.map { "echo \($0.value) > /proc/sys/fs/mqueue/\($0.key) && " }.joined()
        let script = "mount -t tmpfs -o size=\(sharedMemorySize),mode=1777 tmpfs /dev/shm && \(mountQueues)\(mountDisk) && \(limits)echo ready && exec sleep infinity"
        let output = Pipe()
        holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        holder.arguments = ["--ipc", "--mount", "--propagation", "private", "/bin/sh", "-c", script]
        holder.standardOutput = output
        holder.standardInput = FileHandle.nullDevice
        try holder.run()
        // unshare and sh exec, so the holder keeps its pid; "ready" once the mounts are in place.
        let line = String(decoding: output.fileHandleForReading.readData(ofLength: 6), as: UTF8.self)
        guard line == "ready\n" else {
            holder.terminate()
            holder.waitUntilExit()
            throw HarnessError(description: "the IPC namespace could not be set up (unshare said '\(line)')")
        }
        pid = holder.processIdentifier
        sharedMemoryDirectory = "/proc/\(pid)/root/dev/shm"
        mqueueDirectory = "/proc/\(pid)/root/dev/mqueue" + (mqueueOnDevMqueue ? "" : "/hidden")
    }

    /// A path as the namespace sees it, from outside.
    func inside(_ path: String) -> String {
        "/proc/\(pid)/root" + path
    }

    /// nsenter's arguments to run a program in the namespace.
    var enterArguments: [String] {
        ["--target", "\(pid)", "--mount", "--ipc", "--"]
    }

    /// Creates a shared-memory object (`name` without the slash) of `size` zero bytes, as
    /// shm_open would in the namespace.
    func createSharedMemory(_ name: String, size: Int = 128) throws {
        guard FileManager.default.createFile(atPath: sharedMemoryDirectory + "/" + name, contents: Data(count: size),
                                             attributes: [.posixPermissions: 0o600]) else {
            throw HarnessError(description: "cannot create \(name) in the namespace's /dev/shm")
        }
    }

    /// Creates an (empty) message queue in the namespace: the mqueue filesystem makes a queue of
    /// any file created in it.
    func createQueue(_ name: String) throws {
        let descriptor = open(mqueueDirectory + "/" + name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw HarnessError(description: "cannot create the queue \(name): \(String(cString: strerror(errno)))") }
        Glibc.close(descriptor)
    }

    /// Every object in the namespace (`shm:NAME`, `mqueue:NAME`).
    var objects: [String] {
        let shm = ((try? FileManager.default.contentsOfDirectory(atPath: sharedMemoryDirectory)) ?? []).map { "shm:" + $0 }
        let queues = ((try? FileManager.default.contentsOfDirectory(atPath: mqueueDirectory)) ?? []).map { "mqueue:" + $0 }
        return (shm + queues).sorted()
    }

    /// Ends the holder, and with it the namespace (its daemons must have been stopped).
    func close() {
        guard holder.isRunning else { return }
        holder.terminate()
        holder.waitUntilExit()
    }

    deinit {
        close()
    }
}
