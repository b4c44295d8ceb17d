import ArgumentParser
import PoolProtocol

enum AppendPrinting: JobKindPrinting {
    static var command: any ParsableCommand.Type { AppendCommand.self }

    static func lines(_ result: AppendResult) -> [String] {
        switch result.memory {
        case .shared:
            return ["  shared string: \(result.text ?? "") (length \(result.length ?? 0) of \(result.expectedLength ?? 0))"]
        case .private:
            return (result.copies ?? []).map { "  slot \($0.slot)'s own copy: \($0.text)" }
                + ["  the daemon's copy: \"\(result.daemonCopy ?? "")\" (nobody could append to it)"]
        }
    }
}
