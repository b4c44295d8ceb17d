import ArgumentParser
import PoolProtocol

enum LockCellPrinting: JobKindPrinting {
    static var command: any ParsableCommand.Type { LockCellCommand.self }

    static func lines(_ result: LockCellResult) -> [String] {
        ["  counter = \(result.counter) (expected \(result.expected))"]
    }
}
