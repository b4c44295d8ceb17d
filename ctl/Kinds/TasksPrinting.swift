import ArgumentParser
import PoolProtocol

enum TasksPrinting: JobKindPrinting {
    static var command: any ParsableCommand.Type { TasksCommand.self }

    static func lines(_ result: TasksResult) -> [String] {
        result.tasks.map { "  I'm the task \($0.index) (slot \($0.slot), waited \($0.waitMicros)us)" }
    }
}
