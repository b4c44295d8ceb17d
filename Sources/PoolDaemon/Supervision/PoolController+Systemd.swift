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
        guard lifecycle != .stopped else { return }
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

    /// SIGHUP: re-read the configuration file and apply what changed (the pool size), telling the
    /// service manager RELOADING=1 before and READY=1 after.
    func reload() {
        guard lifecycle == .running else { return }
        notifier.notify("RELOADING=1")
        defer { notifier.notify("READY=1") }
        guard let path = configuration.configurationFile else {
            logger.info("reload: no configuration file (--config); nothing to re-read")
            return
        }
        do {
            let file = try ConfigurationFile.load(path)
            if let workers = file.workers, workers != targetSize {
                guard (1...configuration.maxWorkers).contains(workers) else {
                    logger.error("reload: workers = \(workers) is outside 1...\(configuration.maxWorkers); keeping \(targetSize)")
                    return
                }
                do throws(PoolError) {
                    try checkResources(forPoolSize: workers)
                } catch {
                    logger.error("reload: workers = \(workers) does not fit: \(error.parameters.reason ?? error.name); keeping \(targetSize)")
                    return
                }
                resize(to: workers)
            }
            logger.info("reloaded", metadata: ["config": "\(path)", "workers": "\(targetSize)"])
        } catch {
            logger.error("reload failed; keeping the running configuration: \(error)")
        }
    }
}
