import Foundation
import PoolDaemon
import PoolIPC
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The files in `systemd/`, checked the way systemd will read them once `make install` has put
/// them in place: `systemd-analyze verify` and `security --offline` against a temporary root laid
/// out as installed, and the sysusers.d and tmpfiles.d files applied to a temporary root.
@Suite(.timeLimit(.minutes(3)))
struct SystemdUnitTests {
    // MARK: systemd-analyze on the units as installed

    @Test func unitsAsInstalledPassVerifyWithoutAnyWarning() throws {
        let root = try InstalledRoot()
        defer { root.remove() }
        let result = try SystemdTool.run("systemd-analyze", ["verify", "--root=\(root.path)", "--recursive-errors=yes", "--man=no",
                                                             root.unitPath("poold.socket"), root.unitPath("poold.service")])
        // verify's exit status does not cover every warning: anything it prints is a finding.
        let output = (result.stdout + result.stderr).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(result.status == 0, "systemd-analyze verify exited with \(result.status):\n\(output)")
        #expect(output.isEmpty, "systemd-analyze verify warned:\n\(output)")
    }

    /// The check above means something only if verify looks inside the root: without the daemon's
    /// binary at ExecStart's path there, it must complain.
    @Test func verifyNoticesAMissingDaemonBinaryInTheRoot() throws {
        let root = try InstalledRoot(withDaemonBinary: false)
        defer { root.remove() }
        let result = try SystemdTool.run("systemd-analyze", ["verify", "--root=\(root.path)", "--recursive-errors=yes", "--man=no",
                                                             root.unitPath("poold.service")])
        let output = result.stdout + result.stderr
        #expect(result.status != 0, "verify accepted a unit whose ExecStart binary is missing:\n\(output)")
        #expect(output.contains(root.daemonExecutable) && output.contains("not executable"), "\(output)")
    }

    @Test func securityExposureIsAtMostOnePointFive() throws {
        let root = try InstalledRoot()
        defer { root.remove() }
        let result = try SystemdTool.run("systemd-analyze", ["security", "--offline=yes", "--threshold=15", "--root=\(root.path)",
                                                             "--no-pager", "poold.service"])
        let output = result.stdout + result.stderr
        #expect(result.status == 0, "systemd-analyze security exited with \(result.status):\n\(output)")
        let level = try #require(Self.overallExposure(in: output, unit: "poold.service"), "no overall exposure level in:\n\(output)")
        let exposed = output.split(separator: "\n").filter { $0.hasPrefix("✗") }.joined(separator: "\n")
        #expect(level <= 1.5, "overall exposure \(level) is above 1.5; exposed:\n\(exposed)")
    }

    // MARK: What the units promise

    @Test func socketAndServiceAgreeOnThePathTheUserAndTheLifecycle() throws {
        let socket = try UnitFile(path: Repository.file("poold.socket"))
        let service = try UnitFile(path: Repository.file("poold.service"))

        let listen = socket.values("Socket", "ListenStream")
        #expect(listen == ["/run/poold.sock"])
        #expect(socket.value("Socket", "SocketMode") == "0660")
        #expect(socket.value("Socket", "SocketGroup") == "poold")
        #expect(socket.values("Install", "WantedBy").contains("sockets.target"))

        let execStart = try #require(service.value("Service", "ExecStart"))
        #expect(execStart.split(separator: " ").first == "/usr/local/bin/poold")
        #expect(execStart.contains("--socket /run/poold.sock"), "ExecStart names another socket than ListenStream=: \(execStart)")
        // The socket outlives the service: systemd removes RuntimeDirectory= whenever the service stops.
        let runtimeDirectories = service.values("Service", "RuntimeDirectory").flatMap { $0.split(separator: " ") }
        #expect(!runtimeDirectories.isEmpty)
        for directory in runtimeDirectories {
            #expect(!"/run/poold.sock".hasPrefix("/run/\(directory)/"), "the socket lies inside RuntimeDirectory=\(directory)")
        }

        #expect(service.value("Service", "Type") == "notify")
        #expect(service.value("Service", "NotifyAccess") == "main")
        #expect(service.value("Service", "KillMode") == "mixed")
        #expect(service.value("Service", "Restart") == "on-failure")
        #expect(service.value("Service", "ExecReload") == "/bin/kill -HUP $MAINPID")
        #expect(service.value("Service", "WatchdogSec").map { !$0.isEmpty && $0 != "0" } == true)
        #expect(service.value("Service", "TimeoutStopSec") != nil)
        #expect(service.value("Service", "StateDirectory") == "poold")
        #expect(service.value("Service", "User") == "poold")
        #expect(service.value("Service", "RemoveIPC") == "yes")
        #expect(service.values("Service", "DynamicUser").allSatisfy { $0 == "no" })
        // Decided and explained in the unit: both stay off.
        #expect(service.value("Service", "PrivateIPC") == "no")
        #expect(service.value("Service", "PrivateUsers") == "no")
        #expect(service.values("Unit", "Requires").contains("poold.socket"))
    }

    /// The seccomp allow list that SystemCallFilter= builds on this systemd, worked out from
    /// `systemd-analyze syscall-filter`, lets through every system call the daemon and its workers
    /// make (traced with strace over every job kind, a resize, a cancel and a shutdown).
    @Test func syscallFilterAllowsWhatTheDaemonCalls() throws {
        let service = try UnitFile(path: Repository.file("poold.service"))
        let allowed = try SyscallFilter.allowList(service.values("Service", "SystemCallFilter"))
        let needed = [
            // POSIX message queues and shared memory
            "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_getsetattr", "openat", "ftruncate", "mmap", "munmap",
            "unlink", "flock", "pread64",
            // workers: posix_spawn of /proc/self/exe, supervision through pidfds
            "execve", "clone", "waitid", "pidfd_open", "pidfd_send_signal", "kill", "prctl", "setpgid", "close_range",
            "getppid", "readlink",
            // the event loops
            "signalfd4", "eventfd2", "futex", "poll", "epoll_create1", "epoll_ctl", "epoll_wait", "timerfd_create",
            "timerfd_settime", "rt_sigprocmask", "rt_sigaction", "sigaltstack",
            // the control socket, the journal and sd_notify
            "socket", "bind", "listen", "accept4", "getsockopt", "getsockname", "getpeername", "connect", "sendmsg", "writev",
            // the runtime
            "prlimit64", "sched_getaffinity", "getrandom", "madvise", "mprotect", "rseq", "set_robust_list",
            // the job history's background thread
            "sched_setscheduler", "setpriority",
        ]
        let refused = needed.filter { !allowed.contains($0) }
        #expect(refused.isEmpty, "SystemCallFilter= refuses system calls poold makes: \(refused)")
        // And it is a real filter: what a pool has no business calling stays out.
        for denied in ["mount", "reboot", "init_module", "ptrace", "setuid", "bpf", "swapon", "sched_setattr", "setrlimit"] {
            #expect(!allowed.contains(denied), "SystemCallFilter= allows \(denied)")
        }
    }

    /// The history's writer may go back from SCHED_IDLE to nice 19 while someone waits for a write,
    /// and the unit permits no higher priority than that.
    @Test func limitNICEPermitsNice19AndNoMore() throws {
        let service = try UnitFile(path: Repository.file("poold.service"))
        #expect(service.value("Service", "LimitNICE") == "+19")
    }

    /// LimitMSGQUEUE= covers the largest pool poold allows (`--max-workers`'s default) with every
    /// worker pair in a prodcons job using the largest messages the kernel's default limits allow.
    @Test func messageQueueLimitCoversTheLargestPool() throws {
        let service = try UnitFile(path: Repository.file("poold.service"))
        let text = try #require(service.value("Service", "LimitMSGQUEUE"))
        let limit = try #require(Self.bytes(text), "LimitMSGQUEUE=\(text) is not a byte count")

        let help = try runProgram(Binaries.poold, ["--help"])
        let flattened = help.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        let maxWorkers = try #require(Self.defaultValue(of: "--max-workers", in: flattened), "no --max-workers default in:\n\(help.stdout)")

        // The kernel charges each message a struct msg_msg (48 bytes) and a tree node (48 bytes) on
        // 64-bit Linux; poold's own estimate is SystemLimits.messageQueueCost. Take the larger.
        func cost(depth: Int, messageSize: Int) -> Int {
            max(depth * (messageSize + 96), SystemLimits.messageQueueCost(depth: depth, messageSize: messageSize))
        }
        let defaultMaxDepth = 10, defaultMaxMessageSize = 8192  // fs.mqueue.msg_max, fs.mqueue.msgsize_max
        let needed = maxWorkers * cost(depth: 2, messageSize: 16)               // per worker: its command queue
            + cost(depth: defaultMaxDepth, messageSize: 32)                     // the event queue
            + maxWorkers / 2 * cost(depth: defaultMaxDepth, messageSize: defaultMaxMessageSize)  // a prodcons queue per pair
        #expect(limit >= needed, "LimitMSGQUEUE=\(text) (\(limit) bytes) is below the \(needed) bytes a pool of \(maxWorkers) may need")
        #expect(limit <= 64 << 20, "LimitMSGQUEUE=\(text) no longer bounds the kernel memory the pool can pin")
    }

    // MARK: sysusers.d and tmpfiles.d

    @Test func sysusersCreatesTheUserAndGroupTheUnitsName() throws {
        let root = try TemporaryDirectory()
        defer { root.remove() }
        try FileManager.default.createDirectory(atPath: root.path + "/etc", withIntermediateDirectories: true)
        let result = try SystemdTool.run("systemd-sysusers", ["--root=\(root.path)", Repository.file("poold.sysusers")])
        #expect(result.status == 0, "systemd-sysusers failed:\n\(result.stderr)")

        let service = try UnitFile(path: Repository.file("poold.service"))
        let socket = try UnitFile(path: Repository.file("poold.socket"))
        let user = try #require(service.value("Service", "User"), "poold.service names no User=")
        let passwd = try String(contentsOfFile: root.path + "/etc/passwd", encoding: .utf8)
        let groups = try String(contentsOfFile: root.path + "/etc/group", encoding: .utf8)
        let entry = try #require(passwd.split(separator: "\n").map { $0.split(separator: ":", omittingEmptySubsequences: false) }
            .first { $0.first.map(String.init) == user }, "no user \(user) in:\n\(passwd)")
        #expect(entry.count == 7)
        let uid = try #require(Int(entry[2]))
        #expect(uid > 0 && uid < 1000, "\(user) is not a system user (uid \(uid))")
        #expect(entry[6].hasSuffix("nologin"), "\(user) may log in: \(entry[6])")
        let groupNames = Set(groups.split(separator: "\n").compactMap { $0.split(separator: ":").first.map(String.init) })
        for name in [service.value("Service", "Group"), socket.value("Socket", "SocketGroup")].compactMap({ $0 }) {
            #expect(groupNames.contains(name), "no group \(name) in:\n\(groups)")
        }
    }

    /// The service runs `poold --config=-/etc/poold.conf`; tmpfiles.d creates that file when it is
    /// missing, keeps an existing one, and the daemon starts with what it created.
    @Test func tmpfilesCreatesTheConfigurationTheServiceReads() throws {
        let service = try UnitFile(path: Repository.file("poold.service"))
        let arguments = try #require(service.value("Service", "ExecStart")).split(separator: " ").map(String.init)
        // `--config=-/etc/poold.conf`: the file may be missing, and tmpfiles.d creates it anyway.
        let configArgument = try #require(arguments.first { $0.hasPrefix("--config=-") })
        let configPath = String(configArgument.dropFirst("--config=-".count))

        let root = try TemporaryDirectory()
        defer { root.remove() }
        try FileManager.default.createDirectory(atPath: root.path + "/etc", withIntermediateDirectories: true)
        let create = try SystemdTool.run("systemd-tmpfiles", ["--root=\(root.path)", "--create", Repository.file("poold.tmpfiles")])
        #expect(create.status == 0, "systemd-tmpfiles failed:\n\(create.stderr)")
        let created = root.path + configPath
        let text = try String(contentsOfFile: created, encoding: .utf8)
        #expect(text.contains("workers"), "\(configPath) as created:\n\(text)")

        let daemon = try DaemonHarness.start(workers: 1, arguments: ["--config", created])
        try daemon.stop()

        try "workers = 3\n".write(toFile: created, atomically: false, encoding: .utf8)
        let again = try SystemdTool.run("systemd-tmpfiles", ["--root=\(root.path)", "--create", Repository.file("poold.tmpfiles")])
        #expect(again.status == 0)
        #expect(try String(contentsOfFile: created, encoding: .utf8) == "workers = 3\n", "tmpfiles.d overwrote an existing \(configPath)")
    }

    // MARK: make install

    @Test func installPutsEachFileWhereSystemdAndManLookForThePrefix() throws {
        for (prefix, systemdLibrary) in [("/usr/local", "/usr/local/lib"), ("/usr", "/usr/lib"), ("/opt/poold", "/opt/poold/lib")] {
            let root = try InstalledRoot(prefix: prefix)
            defer { root.remove() }
            for file in ["\(prefix)/bin/poold", "\(prefix)/bin/poolctl", "\(systemdLibrary)/systemd/system/poold.service",
                         "\(systemdLibrary)/systemd/system/poold.socket", "\(systemdLibrary)/sysusers.d/poold.conf",
                         "\(systemdLibrary)/tmpfiles.d/poold.conf", "\(systemdLibrary)/systemd/catalog/poold.catalog",
                         "\(prefix)/share/man/man8/poold.8", "\(prefix)/share/man/man1/poolctl.1",
                         "\(prefix)/share/bash-completion/completions/poolctl", "\(prefix)/share/zsh/site-functions/_poolctl",
                         "\(prefix)/share/fish/vendor_completions.d/poolctl.fish"] {
                #expect(FileManager.default.fileExists(atPath: root.path + file), "make install PREFIX=\(prefix) left no \(file)")
            }
            let service = try UnitFile(path: root.unitPath("poold.service"))
            #expect(service.value("Service", "ExecStart")?.hasPrefix("\(prefix)/bin/poold ") == true)
        }
    }

    @Test func installFetchesNothing() throws {
        let plan = try Repository.makeInstall(destination: "/nonexistent", prefix: "/usr/local", dryRun: true)
        #expect(plan.status == 0, "\(plan.stderr)")
        for fetcher in ["apt-get", "pip", "dpkg"] {
            #expect(!plan.stdout.contains(fetcher), "make install runs \(fetcher):\n\(plan.stdout)")
        }
    }

    @Test func theManualPagesRenderAndDescribeEveryOption() throws {
        let root = try InstalledRoot()
        defer { root.remove() }
        var environment = ProcessInfo.processInfo.environment
        environment["MANWIDTH"] = "100"
        environment["MAN_KEEP_FORMATTING"] = nil
        let daemon = try runProgram("/usr/bin/man", ["-P", "cat", "-l", root.path + "/usr/local/share/man/man8/poold.8"], environment: environment)
        #expect(daemon.status == 0 && daemon.stderr.isEmpty, "man -l poold.8: \(daemon.stderr)")
        #expect(daemon.stdout.contains("POOLD(8)") && daemon.stdout.contains("poold --socket /tmp/p.sock --workers 4"))
        for key in ConfigurationFile.keys { #expect(daemon.stdout.contains("--\(key)"), "poold(8) does not describe --\(key)") }
        #expect(!daemon.stdout.contains("--fault") && !daemon.stdout.contains("worker --slot"), "poold(8) shows what is for tests and workers")
        let control = try runProgram("/usr/bin/man", ["-P", "cat", "-l", root.path + "/usr/local/share/man/man1/poolctl.1"], environment: environment)
        #expect(control.status == 0 && control.stderr.isEmpty, "man -l poolctl.1: \(control.stderr)")
        for command in ["status", "run", "jobs", "cancel", "pool", "shutdown", "logs"] {
            #expect(control.stdout.contains(command), "poolctl(1) does not describe \(command)")
        }
        let service = try UnitFile(path: root.unitPath("poold.service"))
        #expect(service.values("Unit", "Documentation").joined(separator: " ").contains("man:poold(8)"))
    }

    @Test func theBashCompletionCompletesPoolctlsCommands() throws {
        let root = try InstalledRoot()
        defer { root.remove() }
        let script = root.path + "/usr/local/share/bash-completion/completions/poolctl"
        // As bash-completion would: source the script, then ask for the words after `poolctl `.
        let probe = "source '\(script)'; COMP_WORDS=(poolctl ''); COMP_CWORD=1; COMP_LINE='poolctl '; COMP_POINT=8; " +
            "$(complete -p poolctl | sed -E 's/.*-F ([^ ]+).*/\\1/') poolctl '' poolctl; printf '%s\\n' \"${COMPREPLY[@]}\""
        let completed = try runProgram("/bin/bash", ["-c", probe], environment: ["PATH": root.path + "/usr/local/bin:/usr/bin:/bin"])
        #expect(completed.status == 0, "\(completed.stderr)")
        let words = Set(completed.stdout.split(separator: "\n").map(String.init))
        #expect(words.isSuperset(of: ["status", "run", "jobs", "cancel", "pool", "shutdown", "logs"]), "\(words)")
    }

    // MARK: Helpers

    /// The number in "Overall exposure level for UNIT: 1.2 OK".
    static func overallExposure(in output: String, unit: String) -> Double? {
        let marker = "Overall exposure level for \(unit): "
        guard let line = output.split(separator: "\n").first(where: { $0.contains(marker) }),
              let range = line.range(of: marker) else { return nil }
        return Double(line[range.upperBound...].prefix { $0.isNumber || $0 == "." })
    }

    /// Bytes in systemd's notation: 16M, 800K, 1G (base 1024), or a plain number.
    static func bytes(_ text: String) -> Int? {
        let units: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
        if let last = text.last, let factor = units[last] { return Int(text.dropLast()).map { $0 * factor } }
        return Int(text)
    }

    /// N in "--option <value> ... (default: N)" of ArgumentParser's help, whitespace flattened.
    static func defaultValue(of option: String, in help: String) -> Int? {
        // The last mention: the usage line comes first, the option's own description last.
        guard let start = help.range(of: option + " <", options: .backwards) else { return nil }
        guard let marker = help[start.upperBound...].range(of: "(default: ") else { return nil }
        return Int(help[marker.upperBound...].prefix { $0.isNumber })
    }
}

/// The package's `systemd/` folder, found from this file's path.
private enum Repository {
    static let root: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let systemdDirectory = root + "/systemd"

    static func file(_ name: String) -> String { systemdDirectory + "/" + name }

    /// `make install` into `destination`, of the binaries this test run uses (`make test` builds
    /// the manual generator beside them).
    static func makeInstall(destination: String, prefix: String, dryRun: Bool = false) throws -> CommandResult {
        try runProgram("/usr/bin/make", ["-C", root] + (dryRun ? ["-n"] : []) +
                       ["install", "DESTDIR=" + destination, "PREFIX=" + prefix, "BINARIES=" + Binaries.directory])
    }
}

/// systemd's command-line tools, run with plain (uncoloured) output.
private enum SystemdTool {
    static func path(_ name: String) throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init) + ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        guard let found = directories.map({ $0 + "/" + name }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw HarnessError(description: "\(name) is not installed (Debian package systemd)")
        }
        return found
    }

    static func run(_ name: String, _ arguments: [String]) throws -> CommandResult {
        var environment = ProcessInfo.processInfo.environment
        environment["SYSTEMD_COLORS"] = "0"
        environment["SYSTEMD_PAGER"] = "cat"
        environment.removeValue(forKey: "SYSTEMD_UNIT_PATH")
        return try runProgram(path(name), arguments, environment: environment)
    }
}

/// A temporary root as `make install DESTDIR=...` leaves it, with the binaries this test run
/// built: the units where systemd looks for PREFIX, beside a copy of this machine's own units
/// (their dependencies: sysinit.target, sockets.target, ...) and the other programs they run.
private struct InstalledRoot {
    static let hostUnitDirectory = "/usr/lib/systemd/system"
    let directory: TemporaryDirectory
    let prefix: String
    let daemonExecutable: String

    var path: String { directory.path }
    /// Where systemd looks for vendor units of this prefix.
    var unitDirectory: String { (prefix == "/usr" ? "/usr/lib" : prefix + "/lib") + "/systemd/system" }

    func unitPath(_ name: String) -> String { path + unitDirectory + "/" + name }

    init(withDaemonBinary: Bool = true, prefix: String = "/usr/local") throws {
        directory = try TemporaryDirectory()
        self.prefix = prefix
        let files = FileManager.default
        do {
            try files.createDirectory(atPath: directory.path + "/usr/lib/systemd", withIntermediateDirectories: true)
            let copy = try runProgram(SystemdTool.path("cp"), ["-a", Self.hostUnitDirectory, directory.path + Self.hostUnitDirectory])
            guard copy.status == 0 else { throw HarnessError(description: "cannot copy \(Self.hostUnitDirectory): \(copy.stderr)") }
            let install = try Repository.makeInstall(destination: directory.path, prefix: prefix)
            guard install.status == 0 else { throw HarnessError(description: "make install failed:\n\(install.stdout)\(install.stderr)") }
            daemonExecutable = prefix + "/bin/poold"
            if !withDaemonBinary { try files.removeItem(atPath: directory.path + daemonExecutable) }

            let service = try UnitFile(path: directory.path + unitDirectory + "/poold.service")
            let commands = ["ExecStartPre", "ExecStart", "ExecStartPost", "ExecReload", "ExecStop", "ExecStopPost"]
                .flatMap { service.values("Service", $0) }
                .compactMap { $0.split(separator: " ").first.map { String($0.drop { "-@:+!".contains($0) }) } }
            #expect(commands.first { $0.hasSuffix("/poold") } == daemonExecutable, "ExecStart= runs the installed poold")
            for program in Set(commands) where program != daemonExecutable {
                let target = directory.path + program
                #expect(files.isExecutableFile(atPath: program), "the unit runs \(program), which this machine does not have")
                try files.createDirectory(atPath: URL(fileURLWithPath: target).deletingLastPathComponent().path, withIntermediateDirectories: true)
                try files.copyItem(atPath: URL(fileURLWithPath: program).resolvingSymlinksInPath().path, toPath: target)
            }
        } catch {
            directory.remove()
            throw error
        }
    }

    func remove() { directory.remove() }
}

/// A unit file's assignments by section, in order (comments and blank lines skipped).
private struct UnitFile {
    private var assignments: [(section: String, key: String, value: String)] = []

    init(path: String) throws {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var section = ""
        for raw in text.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                section = String(line.dropFirst().dropLast())
                continue
            }
            guard let equals = line.firstIndex(of: "=") else { continue }
            assignments.append((section, line[..<equals].trimmingCharacters(in: .whitespaces),
                                line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)))
        }
    }

    /// Every value of `key`, in order (an empty assignment resets the list, as in systemd).
    func values(_ section: String, _ key: String) -> [String] {
        assignments.filter { $0.section == section && $0.key == key }.reduce(into: []) { list, entry in
            if entry.value.isEmpty { list = [] } else { list.append(entry.value) }
        }
    }

    /// The last value of `key`.
    func value(_ section: String, _ key: String) -> String? {
        assignments.last { $0.section == section && $0.key == key }?.value
    }
}

/// systemd's reading of SystemCallFilter= (systemd.exec(5)): the first assignment decides between
/// an allow list and a deny list; later ones add to it, and `~` ones take away.
private enum SyscallFilter {
    static func allowList(_ assignments: [String]) throws -> Set<String> {
        guard let first = assignments.first, !first.hasPrefix("~") else {
            throw HarnessError(description: "SystemCallFilter= does not start with an allow list: \(assignments)")
        }
        var groups: [String: Set<String>] = [:]
        var allowed = Set<String>()
        for assignment in assignments {
            let removing = assignment.hasPrefix("~")
            let names = (removing ? String(assignment.dropFirst()) : assignment).split(separator: " ").map(String.init)
            for name in names {
                let calls = name.hasPrefix("@") ? try expand(name, cache: &groups) : [name]
                if removing { allowed.subtract(calls) } else { allowed.formUnion(calls) }
            }
        }
        return allowed
    }

    /// The system calls of a group, its nested groups expanded, as `systemd-analyze syscall-filter` lists them.
    private static func expand(_ group: String, cache: inout [String: Set<String>]) throws -> Set<String> {
        if let known = cache[group] { return known }
        let result = try SystemdTool.run("systemd-analyze", ["syscall-filter", group])
        guard result.status == 0 else { throw HarnessError(description: "syscall-filter \(group): \(result.stderr)") }
        var calls = Set<String>()
        for line in result.stdout.split(separator: "\n").dropFirst() {
            let entry = line.trimmingCharacters(in: .whitespaces)
            if entry.isEmpty || entry.hasPrefix("#") { continue }
            if entry.hasPrefix("@") { calls.formUnion(try expand(entry, cache: &cache)) } else { calls.insert(entry) }
        }
        guard !calls.isEmpty else { throw HarnessError(description: "systemd-analyze knows no system calls in \(group)") }
        cache[group] = calls
        return calls
    }
}
