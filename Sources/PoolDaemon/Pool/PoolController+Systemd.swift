import Logging
import NIOCore
import PoolIPC
import PoolProtocol
#if canImport(Glibc)
import Glibc
#endif

/// The service manager's side of the daemon: the watchdog and reloading on SIGHUP.
extension PoolController {
    /// With WATCHDOG_USEC set (for this process), pings at half the interval, but only while the
    /// daemon is healthy: this event loop runs the ping (so a wedged loop stops it) and the
    /// supervisor's watcher thread must have gone round recently.
    func startWatchdog(environment: [String: String]) {
        guard let usec = environment["WATCHDOG_USEC"].flatMap(Int64.init), usec > 0 else { return }
        if let pid = environment["WATCHDOG_PID"].flatMap(Int32.init), pid != getpid() { return }
        let interval = usec * 1000 / 2
        logger.info("watchdog enabled", metadata: ["intervalMillis": "\(interval / 1_000_000)"])
        scheduleWatchdog(every: interval, deadline: usec * 1000)
    }

    private func scheduleWatchdog(every interval: Int64, deadline: Int64) {
        guard !lifecycle.isStopped else { return }
        let stalled = watcher.map { $0.sinceLastRound } ?? 0
        if stalled < deadline {
            notifier.notify("WATCHDOG=1")
        } else {
            logger.critical("the supervisor's watcher has not run for \(stalled / 1_000_000) ms; withholding the watchdog ping")
        }
        eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(interval)) { [self] in
            scheduleWatchdog(every: interval, deadline: deadline)
        }
    }

    /// SIGHUP: re-read the configuration file and apply what changed, telling the service manager
    /// RELOADING=1 before and READY=1 after.
    func reload() {
        guard lifecycle.isRunning else { return }
        notifier.notify("RELOADING=1")
        defer { notifier.notify("READY=1") }
        do {
            _ = try reloadConfiguration()
        } catch {
            logger.error("reload failed; keeping the running configuration: \(error.parameters.reason ?? "\(error)")")
        }
    }

    /// Re-reads the configuration file and compares it with the values in effect: the keys that a
    /// running daemon can take (`workers` resizes the pool; the drain and heartbeat timeouts and
    /// the queue limit are read where they are used) take effect now, the others at the next start,
    /// and a key set on the command line stays as the command line says. Nothing is applied
    /// unless every changed value is valid.
    func reloadConfiguration() throws(PoolError) -> ReloadReply {
        guard let path = configuration.configurationFile else {
            throw PoolError.invalidRequest("the daemon was started without --config: there is no configuration file to re-read")
        }
        let file: ConfigurationFile
        do {
            file = try ConfigurationFile.load(path)
        } catch {
            throw PoolError.invalidRequest("\(error)")
        }
        var reply = ReloadReply(configurationFile: path)
        var changes: [() -> Void] = []
        for key in ConfigurationFile.keys {
            let now = file.value(key)
            guard now != configuration.configurationFileValues[key] else { continue }
            let shown = now.map { "\(key) = \($0)" } ?? "\(key) (removed from the file)"
            if configuration.commandLineKeys.contains(key) {
                reply.ignored.append(shown)
                continue
            }
            guard let now, let apply = try liveChange(key: key, value: now) else {
                reply.pending.append(shown)
                continue
            }
            reply.applied.append(shown)
            changes.append { [self] in
                apply()
                configuration.configurationFileValues[key] = now
            }
        }
        for change in changes { change() }
        var parts = reply.applied.isEmpty ? [] : ["applied " + reply.applied.joined(separator: ", ")]
        if !reply.pending.isEmpty { parts.append("at the next start: " + reply.pending.joined(separator: ", ")) }
        if !reply.ignored.isEmpty { parts.append("set on the command line, so unchanged: " + reply.ignored.joined(separator: ", ")) }
        logger.notice("reloaded \(path): \(parts.isEmpty ? "nothing changed" : parts.joined(separator: "; "))",
                      metadata: ["config": "\(path)", "workers": "\(slotTable.targetSize)"])
        return reply
    }

    /// How a running daemon takes a changed key, checked as the option is; nil for a key that
    /// takes effect only at the next start.
    private func liveChange(key: String, value: String) throws(PoolError) -> (() -> Void)? {
        switch key {
        case "workers":
            guard let workers = Int(value), (1...configuration.maxWorkers).contains(workers) else {
                throw PoolError.invalidParameter(key, "workers = \(value) must be from 1 to \(configuration.maxWorkers) (max-workers)")
            }
            if workers != slotTable.targetSize { try checkResources(forPoolSize: workers) }
            return { [self] in if workers != slotTable.targetSize { resize(to: workers) } }
        case "drain-timeout":
            guard let nanos = DurationText.nanoseconds(value) else {
                throw PoolError.invalidParameter(key, "drain-timeout = \(value) must be a duration such as 30s, 500ms or 0")
            }
            return { [self] in configuration.drainTimeout = .nanoseconds(nanos) }
        case "heartbeat-timeout":
            guard let nanos = DurationText.nanoseconds(value), nanos >= 100_000_000 else {
                throw PoolError.invalidParameter(key, "heartbeat-timeout = \(value) must be a duration of at least 100ms")
            }
            return { [self] in configuration.heartbeatTimeout = .nanoseconds(nanos) }
        case "max-queued-jobs":
            guard let limit = Int(value), limit >= 0 else {
                throw PoolError.invalidParameter(key, "max-queued-jobs = \(value) must be 0 or more")
            }
            return { [self] in configuration.maxQueuedJobs = limit }
        case "job-log-rate":
            guard let rate = Int(value), rate >= 0 else {
                throw PoolError.invalidParameter(key, "job-log-rate = \(value) must be 0 (every job) or more")
            }
            return { [self] in scheduler.logLimiter.jobsPerSecond = rate }
        default:
            return nil
        }
    }
}
