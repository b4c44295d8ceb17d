import Foundation
import PoolProtocol
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized, .timeLimit(.minutes(3)))
struct ControlSocketTests {
    @Test func badInputGetsVarlinkErrorsAndTheDaemonKeepsServing() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let client = try daemon.client()

        try client.sendRaw(Array("this is not json".utf8) + [0])
        let notJSON = try client.readReply()
        #expect(notJSON.error == "io.poold.Pool.InvalidRequest")
        #expect(notJSON.parameters?["reason"]?.stringValue?.contains("JSON") == true)

        let unknown = try client.call("io.poold.Pool.Frobnicate")
        #expect(unknown.error == "org.varlink.service.MethodNotFound")
        #expect(try client.call("com.example.Other.Method").error == "org.varlink.service.InterfaceNotFound")

        let cases: [(JSONValue, String)] = [
            (.object(["workers": .number(0)]), "workers"),
            (.object(["workers": .number(3), "split": .bool(false), "iterations": .number(0)]), "iterations"),
            (.object(["iterations": .number(1e15)]), "iterations"),
            (.object(["mode": .string("sloppy")]), "mode"),
            (.object(["wrokers": .number(2)]), "wrokers"),
            (.object(["start": .string("ten")]), "start"),
        ]
        for (parameters, field) in cases {
            let reply = try client.call(PoolInterface.Method.run.qualifiedName, RunRequest(kind: "counter", parameters: parameters))
            #expect(reply.error == "io.poold.Pool.InvalidParameter", "\(parameters)")
            #expect(reply.parameters?["parameter"]?.stringValue == field, "\(parameters)")
            #expect(reply.parameters?["reason"]?.stringValue?.isEmpty == false)
        }
        let kind = try client.call(PoolInterface.Method.run.qualifiedName, RunRequest(kind: "juggle", parameters: nil))
        #expect(kind.error == "io.poold.Pool.InvalidParameter" && kind.parameters?["parameter"]?.stringValue == "kind")
        let tooBig = try client.call(PoolInterface.Method.run.qualifiedName,
                                     RunRequest(kind: "counter", parameters: .object(["workers": .number(8)])))
        #expect(tooBig.error == "io.poold.Pool.PoolTooSmall")
        let missing = try client.call(PoolInterface.Method.getJob.qualifiedName)
        #expect(missing.error == "io.poold.Pool.InvalidParameter" && missing.parameters?["parameter"]?.stringValue == "id")
        let absent = try client.call(PoolInterface.Method.getJob.qualifiedName, JobIDRequest(id: 12345))
        #expect(absent.error == "io.poold.Pool.NotFound")

        // The same connection, and a new one, still work; no job was created by any of it.
        let status = try VarlinkClient.decode(client.call(PoolInterface.Method.status.qualifiedName), as: StatusReply.self)
        #expect(status.workers.count == 2 && status.jobsFinished == 0 && status.jobsQueued == 0)
        #expect(try daemon.poolctl("status").status == 0)
        try daemon.stop()
    }

    @Test func anOversizedMessageIsRefusedAndTheConnectionClosed() throws {
        let daemon = try DaemonHarness.start(workers: 1)
        defer { try? daemon.stop() }
        let client = try daemon.client()
        try client.sendRaw([UInt8](repeating: UInt8(ascii: "x"), count: (1 << 20) + 65536))
        let reply = try client.readReply()
        #expect(reply.error == "io.poold.Pool.InvalidRequest")
        #expect(throws: VarlinkClientError.self) { _ = try client.readReply() }
        #expect(try daemon.status().workers.count == 1)
        try daemon.stop()
    }

    @Test func theInterfaceDescribesItself() throws {
        let daemon = try DaemonHarness.start(workers: 1)
        defer { try? daemon.stop() }
        let client = try daemon.client()
        let info = try client.call("org.varlink.service.GetInfo", returning: ServiceInfo.self)
        #expect(info.interfaces.contains("io.poold.Pool"))
        let description = try client.call("org.varlink.service.GetInterfaceDescription",
                                          InterfaceDescriptionRequest(interface: "io.poold.Pool"),
                                          returning: InterfaceDescriptionReply.self)
        #expect(description.description == PoolInterface.description)
        try daemon.stop()
    }

    @Test func thePythonVarlinkClientWorks() throws {
        let daemon = try DaemonHarness.start(workers: 2)
        defer { try? daemon.stop() }
        let address = "unix:\(daemon.socketPath)"
        let status = try runProgram("/usr/bin/env", ["python3", "-m", "varlink.cli", "call", address + "/io.poold.Pool.Status", "{}"])
        #expect(status.status == 0, "\(status.stderr)")
        let decoded = try status.json(StatusReply.self)
        #expect(decoded.workers.count == 2 && decoded.pid == Int(daemon.pid))

        let run = try runProgram("/usr/bin/env", ["python3", "-m", "varlink.cli", "call", address + "/io.poold.Pool.Run",
                                                  #"{"kind": "counter", "parameters": {"mode": "atomic", "iterations": 1000}}"#])
        #expect(run.status == 0, "\(run.stderr)")
        let job = try run.json(JobReply.self).job
        #expect(job.state == .succeeded)
        #expect(try #require(job.result)["actual"]?.intValue == 9)
        try daemon.stop()
    }

    @Test func poolctlWithoutADaemonSaysSoAndExits3() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let socket = directory.path + "/nobody.sock"
        let result = try runProgram(Binaries.poolctl, ["--socket", socket, "status"])
        #expect(result.status == 3)
        #expect(result.stderr.contains(socket) && result.stderr.contains("poold"), "\(result.stderr)")
        #expect(!result.stderr.contains("Fatal error") && result.stdout.isEmpty)
    }

    @Test func poolctlUsageErrorsExit2() throws {
        let result = try runProgram(Binaries.poolctl, ["run", "counter", "--mode", "sloppy"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("--mode"), "\(result.stderr)")
    }

    @Test func aSecondDaemonNeverStealsALiveSocket() throws {
        let daemon = try DaemonHarness.start(workers: 1)
        defer { try? daemon.stop() }
        let second = try runProgram(Binaries.poold, ["--socket", daemon.socketPath, "--workers", "1"])
        #expect(second.status == 1)
        #expect(second.stderr.contains("another poold") && second.stderr.contains("pid \(daemon.pid)"), "\(second.stderr)")
        #expect(try daemon.status().pid == Int(daemon.pid), "the first daemon still serves")
        try daemon.stop()
    }

    @Test func unusableSocketPathsAreRefusedWithoutTouchingAnything() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let missing = try runProgram(Binaries.poold, ["--socket", directory.path + "/no/such/dir/p.sock", "--workers", "1"])
        #expect(missing.status == 1 && missing.stderr.contains("does not exist"), "\(missing.stderr)")

        let file = directory.path + "/regular-file"
        _ = FileManager.default.createFile(atPath: file, contents: Data("keep me".utf8))
        let notSocket = try runProgram(Binaries.poold, ["--socket", file, "--workers", "1"])
        #expect(notSocket.status == 1 && notSocket.stderr.contains("not a socket"), "\(notSocket.stderr)")
        #expect((try? String(contentsOfFile: file, encoding: .utf8)) == "keep me")
        #expect(IPCObjects.named(withPrefix: "/poold-\(Int32.max)").isEmpty)
    }
}
