// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "poold",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "poold", targets: ["poold"]),
        .executable(name: "poolctl", targets: ["poolctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
        // SQLite for the job history; links Debian's libsqlite3 (libsqlite3-dev).
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        // Property-based tests (the fuzz tests of the control socket's input handling).
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
    ],
    targets: [
        // What Glibc does not expose: mq_*, pidfd, futex, posix_spawn close-from, robust mutexes.
        .target(name: "CPooldShim"),
        // libsystemd (sd_notify now; the journal later).
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        // POSIX IPC primitives: message queues, shared segments, robust mutexes, futex words, spawning.
        .target(
            name: "PoolIPC",
            dependencies: [
                "CPooldShim",
                .product(name: "Atomics", package: "swift-atomics"),
            ]
        ),
        // The varlink wire format, the io.poold.Pool interface and a blocking client.
        .target(name: "PoolProtocol"),
        // The job history: an SQLite database in the state directory, written off the event loop.
        .target(
            name: "PoolHistory",
            dependencies: [
                "PoolProtocol",
                "CPooldShim",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // Supervisor, scheduler, control server, jobs and the worker side.
        .target(
            name: "PoolDaemon",
            dependencies: [
                "PoolIPC",
                "PoolProtocol",
                "PoolHistory",
                "CSystemd",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Atomics", package: "swift-atomics"),
            ]
        ),
        .executableTarget(
            name: "poold",
            dependencies: [
                "PoolDaemon",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "poolctl",
            dependencies: [
                "PoolProtocol",
                "CSystemd",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "ctl"
        ),
        // make bench's reference for what SwiftNIO itself takes for a round trip: bench/c/echo.c on NIO.
        .executableTarget(
            name: "nio-echo",
            dependencies: [.product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")],
            path: "bench/nio-echo"
        ),
        // A tiny second process for the IPC tests (a peer that maps, locks, sends, or dies holding a lock).
        .executableTarget(
            name: "ipc-probe",
            dependencies: ["PoolIPC"],
            path: "Tests/IPCProbe"
        ),
        .testTarget(name: "PoolIPCTests", dependencies: ["PoolIPC", "ipc-probe"]),
        .testTarget(name: "PoolProtocolTests", dependencies: ["PoolProtocol"]),
        .testTarget(
            name: "PoolHistoryTests",
            dependencies: ["PoolHistory", "PoolProtocol", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .testTarget(
            name: "PoolDaemonTests",
            dependencies: ["PoolProtocol", "PoolIPC", "CPooldShim", "poold", "poolctl",
                           .product(name: "GRDB", package: "GRDB.swift"),
                           .product(name: "PropertyBased", package: "swift-property-based")],
            // Run by the tests from the source tree (inside a private mount namespace).
            exclude: ["Scripts"]
        ),
        // The controller in-process, on NIO's EmbeddedEventLoop with fake workers: its timers
        // (drain, backoff, cancel grace, heartbeats) in virtual time.
        .testTarget(
            name: "PoolControllerTests",
            dependencies: [
                "PoolDaemon",
                "PoolIPC",
                "PoolProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Fuzzing, property-based, of what a client controls: varlink framing, call decoding and
        // job parameter validation (POOLD_FUZZ_ITERATIONS sets how long; see the README).
        .testTarget(
            name: "PoolDaemonFuzzTests",
            dependencies: [
                "PoolDaemon",
                "PoolProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
