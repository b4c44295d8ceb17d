import ArgumentParser

/// poolctl's documented exit statuses.
enum Outcome: Int32 {
    case done = 0
    case jobFailed = 1
    case usage = 2
    case unreachable = 3
    case refused = 4

    var exitCode: ExitCode { ExitCode(rawValue) }
}
