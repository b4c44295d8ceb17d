import CPooldShim
import Foundation
import PoolIPC
import PoolProtocol
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The built binaries, found beside the test bundle (`.build/debug`), or in $POOLD_BIN_DIR
/// (`make soak` runs the tests against the release build).
enum Binaries {
    static let directory: String = {
        if let chosen = ProcessInfo.processInfo.environment["POOLD_BIN_DIR"], !chosen.isEmpty { return chosen }
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var url = URL(fileURLWithPath: executable).deletingLastPathComponent()
        // The xctest bundle may sit one level inside the products folder.
        while !FileManager.default.isExecutableFile(atPath: url.appendingPathComponent("poold").path), url.path != "/" {
            url.deleteLastPathComponent()
        }
        return url.path
    }()

    static var poold: String { directory + "/poold" }
    static var poolctl: String { directory + "/poolctl" }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
}

/// What a finished command printed and how it exited.
struct CommandResult {
    let status: Int32
    let stdout: String
    let stderr: String

    func json<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(stdout.utf8))
    }
}

/// Runs a program to completion, its output captured through files (no pipe can fill and stall it).
func runProgram(_ path: String, _ arguments: [String], environment: [String: String]? = nil) throws -> CommandResult {
    let directory = try TemporaryDirectory()
    defer { directory.remove() }
    let out = directory.path + "/stdout", err = directory.path + "/stderr"
    _ = FileManager.default.createFile(atPath: out, contents: nil)
    _ = FileManager.default.createFile(atPath: err, contents: nil)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    if let environment { process.environment = environment }
    process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
    process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
    process.standardInput = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    return CommandResult(status: process.terminationStatus,
                         stdout: (try? String(contentsOfFile: out, encoding: .utf8)) ?? "",
                         stderr: (try? String(contentsOfFile: err, encoding: .utf8)) ?? "")
}

/// A private temporary directory, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/poold-test-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw HarnessError(description: "mkdtemp failed") }
        path = String(cString: made)
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// The IPC objects on this machine whose names start with `prefix` (without its slash).
enum IPCObjects {
    static var mqueueMounted: Bool {
        let mounts = (try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)) ?? ""
        return mounts.split(separator: "\n").contains { $0.split(separator: " ").dropFirst().prefix(2) == ["/dev/mqueue", "mqueue"] }
    }

    /// `namespace`: look inside a private IPC namespace rather than at this machine's.
    static func named(withPrefix prefix: String, in namespace: IPCNamespace? = nil) -> [String] {
        let bare = prefix.hasPrefix("/") ? String(prefix.dropFirst()) : prefix
        let shmDirectory = namespace?.sharedMemoryDirectory ?? "/dev/shm"
        let mqueueDirectory = namespace?.mqueueDirectory ?? "/dev/mqueue"
        let shm = ((try? FileManager.default.contentsOfDirectory(atPath: shmDirectory)) ?? []).map { "shm:" + $0 }
        let queues = ((try? FileManager.default.contentsOfDirectory(atPath: mqueueDirectory)) ?? []).map { "mqueue:" + $0 }
        return (shm + queues).filter { $0.split(separator: ":", maxSplits: 1).last!.hasPrefix(bare) }.sorted()
    }

    /// The objects of the instance with `prefix`: named `<prefix>.` and anything (so that the
    /// instance `/poold-t1-1` is not charged with `/poold-t1-10`'s objects).
    static func of(instance prefix: String, in namespace: IPCNamespace? = nil) -> [String] {
        named(withPrefix: prefix + ".", in: namespace)
    }

    /// The instance's job segments kept for reuse (`shm:NAME`): those whose header says free
    /// (POOL_JOB_FREE_MAGIC). Between jobs they are all an idle daemon keeps of its jobs.
    static func freeJobSegments(of prefix: String, in namespace: IPCNamespace? = nil) -> [String] {
        let directory = namespace?.sharedMemoryDirectory ?? "/dev/shm"
        return named(withPrefix: prefix + ".job", in: namespace).filter { object in
            guard object.hasPrefix("shm:"), let file = FileHandle(forReadingAtPath: directory + "/" + object.dropFirst(4)) else { return false }
            defer { try? file.close() }
            guard let bytes = try? file.read(upToCount: 4), bytes.count == 4 else { return false }
            return bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) } == POOL_JOB_FREE_MAGIC
        }
    }

    /// The instance's job objects (segments, queues) other than the free segments: none once its
    /// jobs have finished.
    static func jobObjectsInUse(of prefix: String, in namespace: IPCNamespace? = nil) -> [String] {
        let free = freeJobSegments(of: prefix, in: namespace)
        return named(withPrefix: prefix + ".job", in: namespace).filter { !free.contains($0) }
    }
}

/// A /proc file's whole text. (String(contentsOfFile:) trusts the size stat gives, 0 for these,
/// and returns only what its first read got: a page of /proc/PID/maps.)
func procText(_ path: String) -> String {
    guard let file = FileHandle(forReadingAtPath: path) else { return "" }
    defer { try? file.close() }
    return String(decoding: (try? file.readToEnd()) ?? Data(), as: UTF8.self)
}

/// Calls `body` (bind, connect) with the address of the Unix socket at `path` (a short test path).
func withUnixAddress(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32) -> Int32 {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        raw.copyBytes(from: path.utf8)
        raw[path.utf8.count] = 0
    }
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
}

/// A datagram socket standing in for systemd's notification socket: the daemon says READY=1 there.
final class NotifyListener {
    let path: String
    private var descriptor: Int32

    init(path: String) throws {
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        self.descriptor = descriptor
        let bound = withUnixAddress(path) { bind(descriptor, $0, $1) }
        self.path = path
        guard bound == 0 else { throw HarnessError(description: "cannot bind \(path): \(String(cString: strerror(errno)))") }
    }

    deinit {
        close()
    }

    /// Stops listening: the path goes away, so later notifications are refused rather than queued.
    func close() {
        guard descriptor >= 0 else { return }
        unlink(path)
        Glibc.close(descriptor)
        descriptor = -1
    }

    /// The next datagram, or nil when none arrives within `seconds`.
    func receive(timeoutSeconds seconds: Int) -> String? {
        var descriptorSet = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptorSet, 1, Int32(seconds * 1000)) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        return count > 0 ? String(decoding: buffer[..<count], as: UTF8.self) : nil
    }
}

/// A real poold on a temporary socket with its own IPC prefix, ready (it said READY=1) when
/// `start` returns. `stop` ends it with SIGTERM and checks that it left nothing behind.
final class DaemonHarness {
    let directory: TemporaryDirectory
    let socketPath: String
    let prefix: String
    let logPath: String
    /// Its `--state-dir` (the job history): the test's own when it passed one, else inside `directory`.
    let stateDirectory: String
    /// The private IPC namespace the daemon runs in, if any.
    let namespace: IPCNamespace?
    private let process: Process
    private let notify: NotifyListener
    private var stopped = false

    private static let counter = Counter()

    /// Starts a daemon and waits for its READY=1. With `followNotifications`, the notification
    /// socket stays open and `nextNotification` reads what else the daemon says (STATUS=,
    /// WATCHDOG=1, STOPPING=1); otherwise it is closed, so that those fail fast. The job history
    /// goes to `stateDirectory` (a test reuses one across daemons to see it survive), else to a
    /// directory of this daemon's own: never to /var/lib/poold. `prefix` replaces the unique one;
    /// with `namespace` the daemon runs in that private IPC namespace (and the checks look there);
    /// `asNobody` runs it as the user nobody instead of root; `descriptorLimit` starts it with that
    /// RLIMIT_NOFILE, soft and hard (`ulimit -n`).
    /// `workers` nil gives no --workers (the configuration file's, else the number of CPUs).
    static func start(workers: Int?, arguments extra: [String] = [], environment: [String: String] = [:],
                      followNotifications: Bool = false, stateDirectory: String? = nil, prefix: String? = nil,
                      namespace: IPCNamespace? = nil, asNobody: Bool = false, descriptorLimit: Int? = nil) throws -> DaemonHarness {
        #expect(IPCObjects.mqueueMounted, "the mqueue filesystem must be mounted on /dev/mqueue to check for leaks (make test does it)")
        let directory = try TemporaryDirectory()
        let prefix = prefix ?? "/poold-t\(getpid())-\(counter.next())"
        return try DaemonHarness(directory: directory, prefix: prefix, workers: workers, extra: extra,
                                 environment: environment, followNotifications: followNotifications,
                                 stateDirectory: stateDirectory ?? directory.path + "/state", namespace: namespace,
                                 asNobody: asNobody, descriptorLimit: descriptorLimit)
    }

    /// Notifications received before and with READY=1, in order.
    private(set) var notifications: [String] = []

    /// The next notification datagram (nil after `seconds` without one).
    func nextNotification(timeoutSeconds seconds: Int = 30) -> String? {
        notify.receive(timeoutSeconds: seconds)
    }

    private init(directory: TemporaryDirectory, prefix: String, workers: Int?, extra: [String],
                 environment extraEnvironment: [String: String], followNotifications: Bool, stateDirectory: String,
                 namespace: IPCNamespace?, asNobody: Bool, descriptorLimit: Int?) throws {
        self.directory = directory
        self.prefix = prefix
        self.stateDirectory = stateDirectory
        self.namespace = namespace
        socketPath = directory.path + "/poold.sock"
        logPath = directory.path + "/poold.log"
        notify = try NotifyListener(path: directory.path + "/notify.sock")
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process = Process()
        let arguments = ["--socket", socketPath] + (workers.map { ["--workers", "\($0)"] } ?? [])
            + ["--ipc-prefix", prefix, "--log-level", "debug", "--log-target", "stderr", "--state-dir", stateDirectory] + extra
        if let namespace {
            // nsenter execs poold in the namespace: the process is poold itself.
            process.executableURL = URL(fileURLWithPath: "/usr/bin/nsenter")
            process.arguments = namespace.enterArguments + [Binaries.poold] + arguments
        } else if asNobody {
            // setpriv execs poold as nobody (the process is poold itself), from a copy nobody can
            // reach (the build folder may be under /root), in a directory open to it for the socket
            // and the state; nobody may send to the notification socket.
            let copy = directory.path + "/poold"
            try FileManager.default.copyItem(atPath: Binaries.poold, toPath: copy)
            guard chmod(copy, 0o755) == 0, chmod(directory.path, 0o777) == 0, chmod(notify.path, 0o666) == 0 else {
                throw HarnessError(description: "cannot open \(directory.path) to nobody: \(String(cString: strerror(errno)))")
            }
            process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            process.arguments = ["--reuid", "nobody", "--regid", "nogroup", "--clear-groups", "--", copy] + arguments
        } else if let descriptorLimit {
            // prlimit execs poold with the limit set: the process is poold itself.
            process.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
            process.arguments = ["--nofile=\(descriptorLimit):\(descriptorLimit)", "--", Binaries.poold] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: Binaries.poold)
            process.arguments = arguments
        }
        var environment = ProcessInfo.processInfo.environment.merging(extraEnvironment) { $1 }
        environment["NOTIFY_SOCKET"] = notify.path
        process.environment = environment
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        while true {
            guard let message = notify.receive(timeoutSeconds: 30) else {
                // SIGTERM and wait, so that the daemon removes its IPC objects before the test ends.
                process.terminate()
                process.waitUntilExit()
                throw HarnessError(description: "poold did not say READY=1 within 30 s; its log:\n\(log)")
            }
            notifications.append(message)
            if message.split(separator: "\n").contains("READY=1") { break }
        }
        // Unless a test reads them, close the listener so that later notifications fail fast.
        if !followNotifications { notify.close() }
    }

    var pid: Int32 { process.processIdentifier }
    /// Its log so far; after `stop` (which removes the directory), the whole of it.
    var log: String { logAtExit ?? (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
    private var logAtExit: String?

    /// Runs the real poolctl against this daemon.
    func poolctl(_ arguments: String...) throws -> CommandResult {
        try runProgram(Binaries.poolctl, ["--socket", socketPath] + arguments)
    }

    func poolctl(arguments: [String]) throws -> CommandResult {
        try runProgram(Binaries.poolctl, ["--socket", socketPath] + arguments)
    }

    func client() throws -> VarlinkClient {
        try VarlinkClient(socketPath: socketPath, timeoutSeconds: 60)
    }

    func status() throws -> StatusReply {
        try client().call(PoolInterface.Method.status.qualifiedName, returning: StatusReply.self)
    }

    /// Follows the pool with Status + more until `predicate` holds (the daemon pushes a reply on
    /// every change, so this waits on events, not on a clock).
    @discardableResult
    func waitForStatus(_ predicate: (StatusReply) -> Bool) throws -> StatusReply {
        var matched: StatusReply?
        let deadline = Deadline()
        try client().stream(PoolInterface.Method.status.qualifiedName, NoParameters()) { reply in
            try deadline.check("waiting for a status")
            let status = try VarlinkClient.decode(reply, as: StatusReply.self)
            if predicate(status) { matched = status }
            return matched == nil
        }
        guard let matched else { throw HarnessError(description: "the status stream ended early") }
        return matched
    }

    /// The job's record now (GetJob without `more`).
    func jobRecord(_ id: Int) throws -> JobRecord {
        try client().call(PoolInterface.Method.getJob.qualifiedName, JobIDRequest(id: id), returning: JobReply.self).job
    }

    /// Follows a job until its progress reaches `done` (pushed by the daemon while it runs).
    func waitForProgress(job id: Int, atLeast done: Int) throws {
        var reached = false
        let deadline = Deadline()
        try client().stream(PoolInterface.Method.getJob.qualifiedName, JobIDRequest(id: id)) { reply in
            try deadline.check("waiting for job \(id) to make progress")
            let job = try VarlinkClient.decode(reply, as: JobReply.self).job
            reached = (job.progress?.done ?? 0) >= done
            return !reached && !job.state.isFinished
        }
        guard reached else { throw HarnessError(description: "job \(id) ended before it had done \(done)") }
    }

    /// Follows a job with GetJob + more until it has finished.
    func waitForJob(_ id: Int) throws -> JobRecord {
        var final: JobRecord?
        let deadline = Deadline()
        try client().stream(PoolInterface.Method.getJob.qualifiedName, JobIDRequest(id: id)) { reply in
            try deadline.check("waiting for job \(id) to finish")
            let job = try VarlinkClient.decode(reply, as: JobReply.self).job
            if job.state.isFinished { final = job }
            return final == nil
        }
        guard let final else { throw HarnessError(description: "job \(id) did not finish") }
        return final
    }

    /// Sends a signal to the daemon.
    func signal(_ number: Int32) {
        kill(process.processIdentifier, number)
    }

    /// Ends the daemon as a crash would (SIGKILL) and waits for it and for its workers, which exit
    /// by themselves; then removes the IPC objects it could not (as the next start with the same
    /// prefix, or systemd's RemoveIPC=, would). Returns the workers' pids.
    @discardableResult
    func killAndCleanUp(sourceLocation: SourceLocation = #_sourceLocation) throws -> [Int32] {
        guard !stopped else { return [] }
        let workers = try status().workers.map(\.pid).filter { $0 > 0 }.map { Int32($0) }
        // Opened while the workers still run, so that a recycled pid cannot be mistaken for one.
        let pidfds = workers.map { pool_pidfd_open($0) }
        killAbruptly()
        #expect(process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL, sourceLocation: sourceLocation)
        for (worker, pidfd) in zip(workers, pidfds) where pidfd >= 0 {
            var exited = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&exited, 1, 30_000)
            close(pidfd)
            guard ready == 1 else { throw HarnessError(description: "worker \(worker) outlived the SIGKILLed daemon by 30 s") }
        }
        for object in IPCObjects.named(withPrefix: prefix) {
            let parts = object.split(separator: ":", maxSplits: 1).map(String.init)
            if parts[0] == "shm" { _ = SharedSegment.unlink(name: "/" + parts[1]) } else { _ = MessageQueue.unlink(name: "/" + parts[1]) }
        }
        #expect(IPCObjects.named(withPrefix: prefix) == [], sourceLocation: sourceLocation)
        return workers
    }

    /// SIGTERM, then checks: exit status 0, socket removed, no IPC object and no worker left.
    func stop(sourceLocation: SourceLocation = #_sourceLocation) throws {
        guard !stopped else { return }
        let workers = (try? status().workers.map(\.pid).filter { $0 > 0 }) ?? []
        kill(process.processIdentifier, SIGTERM)
        expectCleanExit(workers: workers, sourceLocation: sourceLocation)
    }

    /// Waits for the daemon to exit (a test stopped it), then checks as `stop` does; `workers` are
    /// the pids that must be gone.
    func expectCleanExit(workers: [Int], sourceLocation: SourceLocation = #_sourceLocation) {
        guard !stopped else { return }
        stopped = true
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "poold exited with \(process.terminationStatus); log:\n\(log)", sourceLocation: sourceLocation)
        #expect(!FileManager.default.fileExists(atPath: socketPath), "the socket was not removed", sourceLocation: sourceLocation)
        #expect(ipcObjects == [], "IPC objects left behind", sourceLocation: sourceLocation)
        for worker in workers {
            #expect(kill(Int32(worker), 0) == -1 && errno == ESRCH, "worker \(worker) still runs", sourceLocation: sourceLocation)
        }
        logAtExit = log
        directory.remove()
    }

    /// SIGKILL: the daemon dies at once, leaving its IPC objects (and its socket) behind.
    func killAbruptly() {
        guard !stopped else { return }
        stopped = true
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        directory.remove()
    }

    /// This instance's IPC objects (`shm:NAME`, `mqueue:NAME`), where it runs.
    var ipcObjects: [String] {
        IPCObjects.of(instance: prefix, in: namespace)
    }

    /// The job segments it keeps for reuse (see `IPCObjects.freeJobSegments`).
    var freeJobSegments: [String] {
        IPCObjects.freeJobSegments(of: prefix, in: namespace)
    }

    /// Its job objects but the free segments: none once its jobs have finished.
    var jobObjectsInUse: [String] {
        IPCObjects.jobObjectsInUse(of: prefix, in: namespace)
    }

    deinit {
        // A test that failed before stop(): end the daemon in order, so it cleans up after itself.
        if !stopped, process.isRunning {
            kill(process.processIdentifier, SIGTERM)
            process.waitUntilExit()
        }
    }
}

/// A bound on how long a test follows a stream: the daemon pushes replies on every change, so a
/// stream that keeps going past this means a hang, and the test fails instead of stalling CI
/// (Swift Testing's time limits cannot interrupt a blocking read).
struct Deadline {
    let end = Date().addingTimeInterval(120)

    func check(_ what: String) throws {
        if Date() > end { throw HarnessError(description: "gave up after 120 s \(what)") }
    }
}

/// Numbers the daemons a test run starts, for unique prefixes.
final class Counter: Sendable {
    private let value = Mutex(0)

    func next() -> Int {
        value.withLock { $0 += 1; return $0 }
    }
}

/// A Run call (with `more`) whose replies are read as the test needs them: the job's start, or
/// its last reply, which comes when it has finished (across the daemon's shutdown, say).
final class PendingRun {
    private let client: VarlinkClient
    /// The job, as it was queued.
    let job: JobRecord

    init(_ daemon: DaemonHarness, kind: String, parameters: [String: JSONValue]) throws {
        client = try daemon.client()
        let call = VarlinkCall(method: PoolInterface.Method.run.qualifiedName, parameters: RunRequest(kind: kind, parameters: .object(parameters)),
                               more: true)
        try client.sendRaw([UInt8](try JSONEncoder().encode(call)) + [0])
        job = try VarlinkClient.decode(client.readReply(), as: JobReply.self).job
    }

    /// Reads the progress replies up to the first that shows the job started (or ended).
    func started() throws -> JobRecord {
        var record = job
        while record.state == .queued {
            let reply = try client.readReply()
            record = try VarlinkClient.decode(reply, as: JobReply.self).job
            if reply.continues != true { break }
        }
        return record
    }

    /// Reads the progress replies up to the last one.
    func finalRecord() throws -> JobRecord {
        while true {
            let reply = try client.readReply()
            let record = try VarlinkClient.decode(reply, as: JobReply.self).job
            if reply.continues != true { return record }
        }
    }
}
