import ArgumentParser
import PoolProtocol

enum TasksKind: PoolctlJobKind {
    static var command: any ParsableCommand.Type { TasksCommand.self }

    static func lines(_ result: TasksResult) -> [String] {
        result.tasks.map { "  I'm the task \($0.index) (slot \($0.slot), waited \($0.waitMicros)us)" }
    }
}

struct TasksCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tasks",
        abstract: "The notebook's tasks with arguments: task i says \"I'm the task i\" on participant i mod n.",
        discussion: """
            Examples:
              poolctl run tasks
              poolctl run tasks --count 100 --workers 4
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: RunOptions
    @Option(parsing: .unconditional, help: "Tasks to run (default 10).") var count: Int?
    @Option(parsing: .unconditional, help: "Workers to spread them over (default: as many as the pool has, at most one per task).") var workers: Int?

    func validate() throws {
        try OptionChecks.atLeast(1, count, "--count")
        try OptionChecks.atLeast(1, workers, "--workers")
    }

    func run() throws {
        var parameters = ParameterBuilder()
        parameters.set("count", count)
        parameters.set("workers", workers)
        try JobRunner(global: global, options: options).run(kind: TasksResult.kind, parameters: parameters.object)
    }
}
