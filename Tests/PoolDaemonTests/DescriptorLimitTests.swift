import Foundation
import PoolProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A daemon started with few descriptors (`ulimit -n 64`): it fits its connection limit to them,
/// answers or closes every client, never spins on EMFILE, and still respawns its workers.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct DescriptorLimitTests {
    @Test func withSixtyFourDescriptorsAHundredClientsAreAnsweredOrClosedAndAKilledWorkerIsRespawned() throws {
        let daemon = try DaemonHarness.start(workers: 2, descriptorLimit: 64)
        defer { try? daemon.stop() }
        #expect(daemon.log.contains("lowering --max-connections"), "\(daemon.log.suffix(3000))")
        let victim = try #require(try daemon.status().workers.first { $0.slot == 0 })
        let cpuBefore = processCPUSeconds(daemon.pid)

        // A follower first: it sees the pool change while the clients hold every connection.
        let follower = try RawConnection(socketPath: daemon.socketPath)
        try follower.send(Array(#"{"method":"io.poold.Pool.Status","more":true}"#.utf8) + [0])
        _ = try follower.reply()

        let clients = try (0..<100).map { _ in try RawConnection(socketPath: daemon.socketPath) }
        for client in clients { _ = try client.sendUnlessClosed(RawConnection.call("io.poold.Pool.Status")) }
        var outcomes: [Int: RawConnection.Event] = [:]
        let deadline = Date().addingTimeInterval(60)
        while outcomes.count < clients.count, deadline.timeIntervalSinceNow > 0 {
            var waiting = clients.indices.filter { outcomes[$0] == nil }.map { pollfd(fd: clients[$0].descriptor, events: Int16(POLLIN), revents: 0) }
            let ready = poll(&waiting, nfds_t(waiting.count), 1000)
            guard ready > 0 else { continue }
            for entry in waiting where entry.revents != 0 {
                let index = clients.firstIndex { $0.descriptor == entry.fd }!
                outcomes[index] = try clients[index].next(timeoutSeconds: 10)
            }
        }
        #expect(outcomes.count == clients.count, "\(clients.count - outcomes.count) clients got neither an answer nor a close")
        var answered = 0, refused = 0, closed = 0
        for outcome in outcomes.values {
            switch outcome {
            case .message(let bytes):
                let reply = try JSONDecoder().decode(VarlinkReply<JSONValue>.self, from: Data(bytes))
                if reply.error == nil { answered += 1 } else {
                    #expect(reply.error == "io.poold.Pool.TooManyConnections", "\(reply)")
                    refused += 1
                }
            case .closed: closed += 1
            case .nothing: Issue.record("a client was left waiting")
            }
        }
        #expect(answered >= 1 && refused >= 1, "answered \(answered), refused \(refused), closed \(closed)")
        let cpu = processCPUSeconds(daemon.pid) - cpuBefore
        print("descriptor limit 64: \(answered) answered, \(refused) refused, \(closed) closed; daemon CPU \(String(format: "%.2f", cpu)) s")
        #expect(cpu < 3, "the daemon used \(cpu) s of CPU serving 100 clients: a busy loop")

        // With every connection it allows taken, a killed worker is still replaced.
        #expect(kill(Int32(victim.pid), SIGKILL) == 0)
        var respawned = false
        while !respawned {
            let reply = try follower.reply()
            let status = try #require(reply.parameters).decode(StatusReply.self)
            respawned = status.workers.contains { $0.slot == 0 && $0.state == .ready && $0.pid != victim.pid && $0.pid != 0 }
        }
        withExtendedLifetime(clients) {}
        try daemon.stop()
    }

    @Test func outOfDescriptorsTheDaemonPausesAcceptingInsteadOfSpinning() throws {
        let daemon = try DaemonHarness.start(workers: 2, descriptorLimit: 64)
        defer { try? daemon.stop() }
        // Fourteen more workers take 28 of the descriptors the connections were given at start, so
        // accept(2) runs out (EMFILE) after a few connections while clients wait. (Fifteen left
        // exactly one, and none once the daemon held one descriptor more: its workers' doorbell.)
        #expect(try daemon.poolctl("pool", "resize", "16").status == 0)
        try daemon.waitForStatus { $0.workers.count == 16 && $0.workers.allSatisfy { $0.state == .ready } }
        let follower = try RawConnection(socketPath: daemon.socketPath)
        try follower.send(Array(#"{"method":"io.poold.Pool.Status","more":true}"#.utf8) + [0])
        var status = try #require(try follower.reply().parameters).decode(StatusReply.self)
        let clients = try (0..<20).map { _ in try RawConnection(socketPath: daemon.socketPath) }
        for client in clients { try client.send(RawConnection.call("io.poold.Pool.Status")) }

        // Not a synchronisation: a window in which to see what the daemon does with clients it
        // cannot accept. Spinning, it would use all of it.
        let cpuBefore = processCPUSeconds(daemon.pid)
        usleep(1_000_000)
        let cpu = processCPUSeconds(daemon.pid) - cpuBefore
        print("out of descriptors: daemon CPU \(String(format: "%.2f", cpu)) s over a 1 s window")
        #expect(cpu < 0.2, "the daemon used \(cpu) s of CPU in 1 s while out of descriptors: a busy loop")
        #expect(daemon.log.contains("cannot accept control connections"), "\(daemon.log.suffix(2000))")

        // The clients accepted so far were answered; the others wait in the backlog until
        // descriptors are free again, and are answered then.
        var answered: [Int] = []
        for (index, client) in clients.enumerated() {
            if case .message = try client.next(timeoutSeconds: 0.01) { answered.append(index) }
        }
        #expect(!answered.isEmpty && answered.count < clients.count, "\(answered.count) of \(clients.count) answered at first")

        // While clients wait for every descriptor that frees up, a killed worker is still
        // respawned: the reserve holds what the respawn needs. Twice, the second time after a
        // longer backoff, when the waiting clients would certainly have taken its descriptors.
        for _ in 0..<2 {
            let victim = try #require(status.workers.first { $0.slot == 0 })
            #expect(kill(Int32(victim.pid), SIGKILL) == 0)
            repeat {
                status = try #require(try follower.reply().parameters).decode(StatusReply.self)
            } while !status.workers.contains { $0.slot == 0 && (($0.state == .ready && $0.pid != victim.pid) || $0.state == .failed) }
            let slot0 = try #require(status.workers.first { $0.slot == 0 })
            #expect(slot0.state == .ready, "slot 0 could not be respawned: \(slot0.lastExit ?? "")")
        }
        // Each client that hangs up frees a descriptor, and a waiting one is accepted and answered.
        var waiting = Set(clients.indices).subtracting(answered)
        for index in answered { shutdown(clients[index].descriptor, Int32(SHUT_RDWR)) }
        let deadline = Date().addingTimeInterval(60)
        while !waiting.isEmpty, deadline.timeIntervalSinceNow > 0 {
            var descriptors = waiting.map { pollfd(fd: clients[$0].descriptor, events: Int16(POLLIN), revents: 0) }
            guard poll(&descriptors, nfds_t(descriptors.count), 1000) > 0 else { continue }
            for entry in descriptors where entry.revents != 0 {
                let index = clients.firstIndex { $0.descriptor == entry.fd }!
                guard try clients[index].next(timeoutSeconds: 10) != .nothing else { continue }
                waiting.remove(index)
                shutdown(entry.fd, Int32(SHUT_RDWR))
            }
        }
        #expect(waiting.isEmpty, "\(waiting.count) clients were never accepted")
        // Hang up, so that the stop's own Status call finds a descriptor.
        for connection in clients + [follower] { shutdown(connection.descriptor, Int32(SHUT_RDWR)) }
        try daemon.stop()
    }
}

/// User plus system CPU time a process has used, in seconds (/proc/PID/stat utime and stime).
func processCPUSeconds(_ pid: Int32) -> Double {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let end = stat.lastIndex(of: ")") else { return 0 }
    // Fields after the command: state is field 3, utime 14, stime 15.
    let fields = stat[stat.index(after: end)...].split(separator: " ")
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}
