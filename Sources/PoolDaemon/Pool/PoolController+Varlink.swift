import Foundation
import NIOCore
import NIOFoundationCompat
import PoolProtocol

/// One varlink call as a method sees it: its parameters, decoded on demand, and its replies.
struct VarlinkCall {
    let message: ByteBuffer
    /// The message as a tree when it is plain JSON (parsed once, with the header).
    let tree: JSONValue?
    let decoder: JSONDecoder
    let responder: VarlinkResponder

    func parameters<P: Decodable>(_ type: P.Type) throws(PoolError) -> P {
        try VarlinkCallDecoding.parameters(type, from: message, tree: tree, decoder: decoder)
    }
}

/// The varlink methods, `io.poold.Pool` and `org.varlink.service`, bound by name in one table.
extension PoolController {
    typealias VarlinkMethod = @Sendable (PoolController, VarlinkCall) throws(PoolError) -> Void

    static let varlinkMethods: [String: VarlinkMethod] = [
        "org.varlink.service.GetInfo": { controller, call throws(PoolError) in controller.serveGetInfo(call) },
        "org.varlink.service.GetInterfaceDescription": { controller, call throws(PoolError) in try controller.serveGetInterfaceDescription(call) },
        PoolInterface.Method.status.qualifiedName: { controller, call throws(PoolError) in try controller.serveStatus(call) },
        PoolInterface.Method.run.qualifiedName: { controller, call throws(PoolError) in
            try controller.serveRun(call.parameters(RunRequest.self), responder: call.responder)
        },
        PoolInterface.Method.listJobs.qualifiedName: { controller, call throws(PoolError) in try controller.serveListJobs(call) },
        PoolInterface.Method.getJob.qualifiedName: { controller, call throws(PoolError) in try controller.serveGetJob(call) },
        PoolInterface.Method.cancel.qualifiedName: { controller, call throws(PoolError) in try controller.serveCancel(call) },
        PoolInterface.Method.resize.qualifiedName: { controller, call throws(PoolError) in try controller.serveResize(call) },
        PoolInterface.Method.restartWorkers.qualifiedName: { controller, call throws(PoolError) in try controller.serveRestartWorkers(call) },
        PoolInterface.Method.reload.qualifiedName: { controller, call throws(PoolError) in try controller.serveReload(call) },
        PoolInterface.Method.shutdown.qualifiedName: { controller, call throws(PoolError) in try controller.serveShutdown(call) },
    ]

    /// Serves one call: the method its name binds, or the error that says why there is none.
    func serve(call header: VarlinkCallHeader, message: ByteBuffer, tree: JSONValue?, decoder: JSONDecoder, responder: VarlinkResponder) {
        do throws(PoolError) {
            if header.upgrade == true {
                throw PoolError.invalidRequest("this service does not support connection upgrades")
            }
            guard let method = Self.varlinkMethods[header.method] else {
                if header.method.hasPrefix(PoolInterface.name + ".") || header.method.hasPrefix("org.varlink.service.") {
                    throw PoolError.methodNotFound(header.method)
                }
                let interface = header.method.split(separator: ".").dropLast().joined(separator: ".")
                throw PoolError.interfaceNotFound(interface)
            }
            try method(self, VarlinkCall(message: message, tree: tree, decoder: decoder, responder: responder))
        } catch {
            responder.fail(error)
        }
    }

    private func serveGetInfo(_ call: VarlinkCall) {
        call.responder.reply(ServiceInfo(vendor: "poold", product: "poold", version: PooldVersion.string, url: "",
                                         interfaces: ["org.varlink.service", PoolInterface.name]))
    }

    private func serveGetInterfaceDescription(_ call: VarlinkCall) throws(PoolError) {
        let request = try call.parameters(InterfaceDescriptionRequest.self)
        switch request.interface {
        case PoolInterface.name: call.responder.reply(InterfaceDescriptionReply(description: PoolInterface.description))
        case "org.varlink.service": call.responder.reply(InterfaceDescriptionReply(description: PoolInterface.serviceDescription))
        default: throw PoolError.interfaceNotFound(request.interface)
        }
    }

    private func serveStatus(_ call: VarlinkCall) throws(PoolError) {
        _ = try call.parameters(NoParameters.self)
        let responder = call.responder
        let status = statusReply()
        if let text = publisher.text(of: status) {
            responder.reply(parametersText: text, continues: responder.more)
        } else {
            responder.reply(status, continues: responder.more)
        }
        guard responder.more, !responder.isDone else { return }
        let id = publisher.follow { status in responder.reply(status, continues: true) }
        responder.onClose = { [publisher] in publisher.unfollow(id) }
    }

    private func serveListJobs(_ call: VarlinkCall) throws(PoolError) {
        let request = try call.parameters(ListJobsRequest.self)
        let limit = request.limit ?? 100
        guard limit >= 1 else { throw PoolError.invalidParameter("limit", "must be at least 1") }
        if let state = request.state, JobState(rawValue: state) == nil {
            throw PoolError.invalidParameter("state", "'\(state)' is no job state; one of \(JobState.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let kind = request.kind, JobCatalog.kind(named: kind) == nil {
            throw PoolError.invalidParameter("kind", "'\(kind)' is no job kind; one of \(JobCatalog.names)")
        }
        call.responder.reply(ListJobsReply(jobs: history.recentRecords(limit: limit, state: request.state, kind: request.kind, current: scheduler.jobs)))
    }

    private func serveGetJob(_ call: VarlinkCall) throws(PoolError) {
        let id = try call.parameters(JobIDRequest.self).id
        let responder = call.responder
        if let past = pastJobRecord(id) { return responder.reply(job: past) }
        let job = try existingJob(id)
        responder.reply(job: job.record, continues: !job.state.isFinished)
        guard responder.more, !responder.isDone else { return }
        // With `more`: follow the job to its end, like a Run that was detached.
        let watcherID = job.addWatcher { record in responder.reply(job: record, continues: !record.state.isFinished) }
        responder.onClose = { job.watchers[watcherID] = nil }
        scheduler.scheduleProgress(for: job)
    }

    private func serveCancel(_ call: VarlinkCall) throws(PoolError) {
        let id = try call.parameters(JobIDRequest.self).id
        // A job from an earlier run has ended; like any ended job, it stays as it is.
        if let past = pastJobRecord(id) { return call.responder.reply(job: past) }
        let job = try existingJob(id)
        cancel(job, reason: "cancelled by a client")
        call.responder.reply(job: job.record)
    }

    private func serveResize(_ call: VarlinkCall) throws(PoolError) {
        let request = try call.parameters(ResizeRequest.self)
        guard (1...configuration.maxWorkers).contains(request.workers) else {
            throw PoolError.invalidParameter("workers", "must be from 1 to \(configuration.maxWorkers) (--max-workers), not \(request.workers)")
        }
        guard lifecycle.isRunning else { throw PoolError.shuttingDown(lifecycle.notRunningReason) }
        try checkResources(forPoolSize: request.workers)
        resize(to: request.workers)
        call.responder.reply(ResizeReply(poolSize: slotTable.targetSize, workers: slotTable.info))
    }

    private func serveRestartWorkers(_ call: VarlinkCall) throws(PoolError) {
        let request = try call.parameters(RestartWorkersRequest.self)
        guard lifecycle.isRunning else { throw PoolError.shuttingDown(lifecycle.notRunningReason) }
        let responder = call.responder
        try restartWorkers(slots: request.slots) { result in
            switch result {
            case .success(let reply): responder.reply(reply)
            case .failure(let error): responder.fail(error)
            }
        }
    }

    private func serveReload(_ call: VarlinkCall) throws(PoolError) {
        _ = try call.parameters(NoParameters.self)
        guard lifecycle.isRunning else { throw PoolError.shuttingDown(lifecycle.notRunningReason) }
        notifier.notify("RELOADING=1")
        defer { notifier.notify("READY=1") }
        call.responder.reply(try reloadConfiguration())
    }

    private func serveShutdown(_ call: VarlinkCall) throws(PoolError) {
        _ = try call.parameters(NoParameters.self)
        call.responder.reply(NoParameters())
        requestStop(reason: "Shutdown")
    }

    private func serveRun(_ request: RunRequest, responder: VarlinkResponder) throws(PoolError) {
        guard lifecycle.isRunning || lifecycle.isStarting else {
            throw PoolError.shuttingDown(shutdownRefusal)
        }
        let limits = JobLimits(poolSize: slotTable.targetSize, maxPoolSize: queueLimitedPoolSize)
        let plan = try JobCatalog.plan(kind: request.kind, parameters: request.parameters, limits: limits)
        if let refusal = slotTable.refusal(forWorkers: plan.workers) { throw refusal }
        try checkResources(for: plan)
        var timeout: Duration?
        if let text = request.timeout {
            guard let nanos = DurationText.nanoseconds(text), nanos > 0 else {
                throw PoolError.invalidParameter("timeout", "must be a positive duration such as 30s or 500ms, not '\(text)'")
            }
            timeout = .nanoseconds(nanos)
        }
        guard scheduler.queue.count < configuration.maxQueuedJobs else {
            throw PoolError.resourceLimit("\(scheduler.queue.count) jobs are queued, the limit (--max-queued-jobs); try again when some have run")
        }
        let detached = request.detach == true && !responder.oneway
        if detached, let problem = history.store?.problem {
            throw PoolError.resourceLimit("a detached job is acknowledged once it is in the job history, and the history cannot be written: \(problem)")
        }
        let job = Job(id: try history.takeJobID(), plan: plan)
        job.timeout = timeout
        if responder.oneway {
            // No reply is wanted: nothing waits for the job or holds on to the connection.
            return enqueue(job)
        }
        if detached {
            // Started once it is in the job history, and acknowledged once the record the client
            // gets is written too; refused (cancelled before it ran) when it cannot be recorded.
            job.awaitingRecord = true
            enqueue(job)
            history.whenWritten { [self] failure in
                job.awaitingRecord = false
                if let failure {
                    cancel(job, reason: "it could not be recorded in the job history, and a detached job runs only once recorded")
                    return responder.fail(.resourceLimit("job \(job.id) could not be recorded in the job history, so it was not started: \(failure)"))
                }
                dispatchJobs()
                history.whenWritten { _ in responder.reply(job: job.record) }
            }
            return
        }
        // Watch before submitting so that a job that starts (or fails) at once is seen.
        let watcherID = job.addWatcher { record in
            guard responder.more || record.state.isFinished else { return }
            responder.reply(job: record, continues: !record.state.isFinished)
        }
        responder.onClose = { job.watchers[watcherID] = nil }
        if responder.more {
            responder.reply(job: job.record, continues: true)
            scheduler.scheduleProgress(for: job)
        }
        enqueue(job)
    }

    private func existingJob(_ id: Int) throws(PoolError) -> Job {
        guard let job = scheduler.jobs[id] else { throw PoolError.notFound(id: id, history.noJobReason(id)) }
        return job
    }

    /// A decoding failure as the InvalidParameter error that names the parameter at fault.
    static func parameterError(_ error: Error) -> PoolError {
        switch error {
        case DecodingError.keyNotFound(let key, let context):
            let path = (context.codingPath + [key]).map(\.stringValue).filter { $0 != "parameters" }.joined(separator: ".")
            return .invalidParameter(path, "is required")
        case DecodingError.typeMismatch(let type, let context), DecodingError.valueNotFound(let type, let context):
            let path = context.codingPath.map(\.stringValue).filter { $0 != "parameters" }.joined(separator: ".")
            return .invalidParameter(path.isEmpty ? "parameters" : path, "must be \(Self.typeName(type))")
        case DecodingError.dataCorrupted(let context):
            let path = context.codingPath.map(\.stringValue).filter { $0 != "parameters" }.joined(separator: ".")
            return .invalidParameter(path.isEmpty ? "parameters" : path, context.debugDescription)
        default:
            return .invalidParameter("parameters", "\(error)")
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type: return "an integer"
        case is String.Type: return "a string"
        case is Bool.Type: return "true or false"
        case is Double.Type: return "a number"
        default: return "an object"
        }
    }
}
