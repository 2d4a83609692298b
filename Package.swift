// swift-tools-version:6.1
//
// Tandem — disaster-recovery replication appliance.
//
// The target graph follows the data path (README, "Architecture"); dependencies point one
// way: engines depend on the kits, never on the agent runtime.
//   CLibraries/  system-library targets for the C libraries (libpq, Connector/C, OpenSSL,
//                zstd, zlib), plus one tiny C shim for function-like macros and CRC32C.
//   Clients/     thin Swift wrappers that own the C handles and turn C errors into typed
//                Swift errors.
//   Core/        pure types: the engine-neutral change model, positions, batches, the batch
//                codec, the retry backoff. No sockets, no database, no filesystem.
//   Capture/     the capture kit: the port an engine's capture implements and what every
//                capture shares (batching, numbering, the capture thread, the ready queue).
//   Engines/     per engine: a pure decoder, a capture and an apply built on the kits; and
//                TandemEngines, the wiring of each engine and the registry of those a build has.
//   Link/        the session protocol between the sites, pure.
//   Transport/   TLS 1.3 sockets.
//   Storage/     the DR spool, and the durable small files (journal, capture state).
//   Apply/       the apply kit: the sink port and its engine-neutral bookkeeping.
//   Services/    the shipper and applier services of the agent.
//   Control/     the agent's local control socket: access by peer credentials, the wire format,
//                the audit log, and the client `tandem status` uses.
//   Status/      what an agent reports about its site: lag, positions and rates (TandemStatus),
//                and the Prometheus metrics endpoint (TandemMetrics).
//   Procedures/  the pair journal (and the DR procedures built on it).
//   Config/      the per-site TOML configuration and its validation.
//   CLI/         the `tandem` command-line tool.
//   Benchmarks/  release-mode benchmark executables (never timed tests).
//   Tests/       besides the test targets: the test-support kit, the synthetic source and sink,
//                and `tandem-test-agent` (the agent with them; never deployed).
import PackageDescription

let package = Package(
    name: "Tandem",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "tandem", targets: ["tandem"]),
        .executable(name: "tandem-bench", targets: ["TandemBench"]),
        .executable(name: "tandem-linkbench", targets: ["LinkBench"]),
        .executable(name: "tandem-test-agent", targets: ["TandemTestAgent"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // 1.16: `LogHandler.log(event:)`, which the JSON log handler implements.
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.0"),
        // The metrics API and its Prometheus backend (`TandemMetrics`).
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.0"),
    ],
    targets: [
        // MARK: C libraries
        .systemLibrary(
            name: "CLibPQ", path: "Sources/CLibraries/CLibPQ",
            pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(
            name: "CMariaDB", path: "Sources/CLibraries/CMariaDB",
            pkgConfig: "libmariadb", providers: [.apt(["default-libmysqlclient-dev"])]),
        .systemLibrary(
            name: "COpenSSL", path: "Sources/CLibraries/COpenSSL",
            pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(
            name: "CZstd", path: "Sources/CLibraries/CZstd",
            pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(
            name: "CZlib", path: "Sources/CLibraries/CZlib",
            pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(
            name: "CTandemShims", dependencies: ["COpenSSL"],
            path: "Sources/CLibraries/CTandemShims",
            cSettings: [.unsafeFlags(["-O2"])]),

        // MARK: Client wrappers
        .target(name: "PGClient", dependencies: ["CLibPQ", "TandemCore"], path: "Sources/Clients/PGClient"),
        .target(name: "MySQLClient", dependencies: ["CMariaDB", "TandemCore"], path: "Sources/Clients/MySQLClient"),
        .target(
            name: "TLSSupport", dependencies: ["COpenSSL", "CTandemShims"],
            path: "Sources/Clients/TLSSupport"),
        .target(name: "ZstdSupport", dependencies: ["CZstd"], path: "Sources/Clients/ZstdSupport"),

        // MARK: Pure core
        .target(name: "TandemCore", path: "Sources/Core/TandemCore"),
        .target(
            name: "TandemCodec", dependencies: ["TandemCore", "ZstdSupport", "CTandemShims"],
            path: "Sources/Core/TandemCodec"),

        // MARK: Kits
        // What every engine's capture shares, and the port it implements for the shipper.
        .target(
            name: "CaptureKit",
            dependencies: [
                "TandemCore", "TandemCodec", "TandemStorage", .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Capture/CaptureKit"),
        // What every engine's apply shares, and the port it implements for the applier.
        .target(
            name: "ApplyKit",
            dependencies: ["TandemCore", "TandemCodec", .product(name: "Logging", package: "swift-log")],
            path: "Sources/Apply/ApplyKit"),

        // MARK: Engines
        // PostgreSQL capture groundwork: the pure pgoutput (protocol v2) decoder. No I/O.
        .target(
            name: "PostgreSQLEngine", dependencies: ["TandemCore"],
            path: "Sources/Engines/PostgreSQLEngine"),
        // PostgreSQL capture (shipper side): the replication connection, slot and
        // publication management, and the `BatchSource` built on them.
        .target(
            name: "PostgreSQLCapture",
            dependencies: [
                "PostgreSQLEngine", "PGClient", "CLibPQ", "TandemCore", "TandemCodec", "CaptureKit", "TandemStorage",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Engines/PostgreSQLCapture"),
        // PostgreSQL apply (applier side): the `BatchSink` writing batches into the DR database.
        .target(
            name: "PostgreSQLApply",
            dependencies: [
                "PGClient", "CLibPQ", "TandemCore", "TandemCodec", "ApplyKit",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Engines/PostgreSQLApply"),
        // MariaDB binlog groundwork: pure event and row-image decoding. No I/O.
        .target(name: "MariaDBEngine", dependencies: ["TandemCore", "CZlib"], path: "Sources/Engines/MariaDBEngine"),
        // MariaDB capture (shipper side): the binlog dump connection and the `BatchSource` on it.
        .target(
            name: "MariaDBCapture",
            dependencies: [
                "MariaDBEngine", "MySQLClient", "CMariaDB", "TandemCore", "TandemCodec", "CaptureKit", "TandemStorage",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Engines/MariaDBCapture"),
        // MariaDB apply (applier side): the `BatchSink` writing batches into the DR server.
        .target(
            name: "MariaDBApply",
            dependencies: [
                "MySQLClient", "CMariaDB", "TandemCore", "TandemCodec", "ApplyKit",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Engines/MariaDBApply"),

        // MARK: Status
        // Lag, positions and rates as pure values: the watermarks and the batch ledger they are
        // computed from, and the site report the agents exchange and `tandem status` shows.
        .target(name: "TandemStatus", dependencies: ["TandemCore"], path: "Sources/Status/TandemStatus"),

        // MARK: Verify
        // Chunked comparison of the two sites' tables: the engines' port and the pure run.
        .target(name: "TandemVerify", dependencies: ["TandemCore"], path: "Sources/Verify/TandemVerify"),
        // Each engine's side of verify: chunk digests computed inside the database.
        .target(
            name: "PostgreSQLVerify", dependencies: ["TandemVerify", "TandemCore", "PGClient"],
            path: "Sources/Engines/PostgreSQLVerify"),
        .target(
            name: "MariaDBVerify", dependencies: ["TandemVerify", "TandemCore", "MySQLClient"],
            path: "Sources/Engines/MariaDBVerify"),

        // MARK: Seed
        // The online initial copy: the engines' ports, the pure run and its durable progress.
        .target(
            name: "TandemSeed", dependencies: ["TandemCore", "TandemVerify", "TandemStorage", "CaptureKit"],
            path: "Sources/Seed/TandemSeed"),
        // Each engine's side of a seed: chunk reads that write their watermark, schema, DR checks.
        .target(
            name: "PostgreSQLSeed",
            dependencies: [
                "TandemSeed", "TandemVerify", "TandemCore", "PGClient", "PostgreSQLEngine", "PostgreSQLVerify",
            ],
            path: "Sources/Engines/PostgreSQLSeed"),
        .target(
            name: "MariaDBSeed",
            dependencies: ["TandemSeed", "TandemVerify", "TandemCore", "MySQLClient", "MariaDBEngine"],
            path: "Sources/Engines/MariaDBSeed"),

        // MARK: Link and transport
        // The session protocol between shipper and applier, as pure state machines.
        .target(name: "TandemLink", dependencies: ["TandemCore"], path: "Sources/Link/TandemLink"),

        // MARK: Storage
        // The applier's durable, append-only batch spool.
        .target(
            name: "TandemSpool", dependencies: ["TandemCore", "TandemCodec", "CTandemShims"],
            path: "Sources/Storage/TandemSpool"),
        // Small files that must survive a crash whole (write, fsync, rename, fsync the directory).
        .target(name: "TandemStorage", path: "Sources/Storage/TandemStorage"),

        // TLS 1.3 mutual-auth connections over sockets: listen or dial, peer pinning.
        .target(
            name: "TandemTransport", dependencies: ["TLSSupport", "COpenSSL", "CTandemShims", "TandemCore"],
            path: "Sources/Transport/TandemTransport"),

        // MARK: Control
        // The agent's local control socket (UNIX, SO_PEERCRED access, audit log) and its client.
        .target(
            name: "TandemControl",
            dependencies: ["TandemCore", "TandemConfig", .product(name: "Logging", package: "swift-log")],
            path: "Sources/Control/TandemControl"),

        // MARK: Services
        // The site agent's shipper and applier: run the link, spool and engine ports together.
        .target(
            name: "TandemAgent",
            dependencies: [
                "TandemCore", "TandemCodec", "TandemLink", "TandemSpool", "TandemTransport", "TLSSupport",
                "TandemConfig", "TandemProcedures", "TandemStatus", "TandemControl", "TandemMetrics", "CaptureKit",
                "ApplyKit", "TandemVerify", "TandemSeed",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Services/TandemAgent"),

        // MARK: Status
        // The figures an agent reports about its site, exported for Prometheus on `GET /metrics`.
        .target(
            name: "TandemMetrics",
            dependencies: [
                "TandemCore", .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            path: "Sources/Status/TandemMetrics"),

        // The engines a build carries, for the agent to find by `[database] engine`.
        .target(
            name: "TandemEngines",
            dependencies: [
                "TandemAgent", "PostgreSQLCapture", "PostgreSQLApply", "MariaDBCapture", "MariaDBApply", "PGClient",
                "MySQLClient", "CaptureKit", "ApplyKit", "TandemConfig", "TandemCore", "TandemVerify",
                "PostgreSQLVerify", "MariaDBVerify", "TandemSeed", "PostgreSQLSeed", "MariaDBSeed",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Engines/TandemEngines"),

        // MARK: Procedures
        // The pair journal (this site's role) and, built on it, the DR procedures.
        .target(
            name: "TandemProcedures", dependencies: ["TandemCore", "TandemStorage"],
            path: "Sources/Procedures/TandemProcedures"),

        // MARK: Configuration
        .target(
            name: "TandemConfig",
            dependencies: ["TandemCore", .product(name: "TOMLKit", package: "TOMLKit")],
            path: "Sources/Config/TandemConfig"),

        // MARK: Executables
        .executableTarget(
            name: "tandem",
            dependencies: [
                "TandemCore", "TandemConfig", "TandemCodec", "PGClient", "MySQLClient", "TLSSupport",
                "TandemLink", "TandemSpool", "TandemTransport", "TandemAgent", "TandemEngines", "CaptureKit",
                "ApplyKit",
                "TandemProcedures", "TandemControl", "TandemStatus", "TandemVerify", "TandemSeed",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/CLI/tandem"),
        .executableTarget(
            name: "TandemBench", dependencies: ["TandemCore", "TandemCodec", "SeededRandom"],
            path: "Sources/Benchmarks/TandemBench"),
        // `tandem-linkbench`: the link's throughput on loopback, with the spool, through two agents, over an emulated WAN.
        .executableTarget(
            name: "LinkBench",
            dependencies: ["TandemCore", "TandemCodec", "TandemLink", "TandemSpool", "TandemTransport", "TLSSupport"],
            path: "Sources/Benchmarks/LinkBench"),

        // Deterministic random numbers for fuzz loops, model tests and benchmark data.
        .target(name: "SeededRandom", path: "Sources/Support/SeededRandom"),

        // MARK: Tests
        // Test-only batches, source and sink: batch N is a pure function of N.
        .target(
            name: "TandemSynthetic", dependencies: ["CaptureKit", "ApplyKit", "TandemCodec", "TandemCore"],
            path: "Tests/TandemSynthetic"),
        // `tandem-test-agent`: the agent with synthetic parts and short delays, for the process
        // tests and the link benchmark; the shipped `tandem` carries none of it.
        .executableTarget(
            name: "TandemTestAgent",
            dependencies: [
                "TandemAgent", "TandemEngines", "TandemSynthetic", "TandemConfig", "TandemCore", "TandemProcedures",
                "CaptureKit", "ApplyKit", "TandemVerify", "TandemSeed",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/TandemTestAgent"),
        .target(
            name: "TandemTestSupport",
            dependencies: [
                "PGClient", "MySQLClient", "TandemAgent", "CaptureKit", "ApplyKit", "TandemCodec", "TandemCore",
                "SeededRandom", "TandemVerify",
            ],
            path: "Tests/TandemTestSupport"),
        .testTarget(
            name: "TandemCoreTests",
            dependencies: [
                "TandemCore", "SeededRandom", .product(name: "PropertyBased", package: "swift-property-based"),
            ]),
        .testTarget(
            name: "TandemCodecTests",
            dependencies: [
                "TandemCore", "TandemCodec", "ZstdSupport", "CTandemShims", "SeededRandom",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]),
        .testTarget(name: "TandemConfigTests", dependencies: ["TandemConfig", "TandemCore"]),
        .testTarget(name: "TandemStatusTests", dependencies: ["TandemStatus", "TandemCore", "SeededRandom"]),
        .testTarget(name: "TandemVerifyTests", dependencies: ["TandemVerify", "TandemCore", "SeededRandom"]),
        .testTarget(
            name: "TandemControlTests",
            dependencies: [
                "TandemControl", "TandemConfig", "TandemCore", "TandemTestSupport", "SeededRandom",
                .product(name: "Logging", package: "swift-log"),
            ]),
        // The exporter, the endpoint over loopback, and a real Prometheus scraping it.
        .testTarget(
            name: "TandemMetricsTests",
            dependencies: [
                "TandemMetrics", "TandemTestSupport", "TandemCore",
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]),
        .testTarget(name: "TandemLinkTests", dependencies: ["TandemLink", "TandemCore", "SeededRandom"]),
        .testTarget(
            name: "ApplyKitTests",
            dependencies: [
                "ApplyKit", "CaptureKit", "TandemCodec", "TandemCore", "SeededRandom",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(
            name: "CaptureKitTests",
            dependencies: [
                "CaptureKit", "TandemCodec", "TandemCore", "SeededRandom",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(
            name: "TandemSpoolTests",
            dependencies: ["TandemSpool", "TandemStorage", "TandemCodec", "TandemCore", "TandemTestSupport"]),
        .testTarget(name: "TLSSupportTests", dependencies: ["TLSSupport", "COpenSSL", "TandemConfig"]),
        .testTarget(name: "TandemTransportTests", dependencies: ["TandemTransport", "TLSSupport"]),
        // Runs two `tandem agent` processes against each other (synthetic source and sink).
        .testTarget(
            name: "TandemAgentTests",
            dependencies: [
                "TandemAgent", "TandemTestSupport", "TandemCore", "TandemCodec", "TandemLink", "TandemTransport",
                "TLSSupport",
                "CaptureKit", "ApplyKit", "TandemProcedures", "TandemStorage", "TandemConfig", "TandemSynthetic",
                "TandemControl", "TandemStatus", "TandemVerify", "SeededRandom",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(
            name: "PostgreSQLEngineTests",
            dependencies: ["PostgreSQLEngine", "TandemCore", "TandemTestSupport", "PGClient", "SeededRandom"]),
        .testTarget(
            name: "PostgreSQLCaptureTests",
            dependencies: [
                "PostgreSQLCapture", "PostgreSQLEngine", "CaptureKit", "TandemCodec", "TandemCore", "TandemTestSupport",
                "PGClient",
            ]),
        .testTarget(
            name: "PostgreSQLApplyTests",
            dependencies: [
                "PostgreSQLApply", "ApplyKit", "TandemAgent", "TandemCodec", "TandemCore", "TandemTestSupport",
                "PGClient",
            ]),
        .testTarget(
            name: "MariaDBCaptureTests",
            dependencies: [
                "MariaDBCapture", "MariaDBEngine", "CaptureKit", "TandemCodec", "TandemCore", "TandemTestSupport",
                "MySQLClient",
            ]),
        .testTarget(
            name: "MariaDBApplyTests",
            dependencies: [
                "MariaDBApply", "ApplyKit", "TandemAgent", "TandemCodec", "TandemCore", "TandemTestSupport",
                "MySQLClient",
            ]),
        .testTarget(
            name: "PostgreSQLVerifyTests",
            dependencies: ["PostgreSQLVerify", "TandemVerify", "TandemCore", "TandemTestSupport", "PGClient"]),
        .testTarget(
            name: "MariaDBVerifyTests",
            dependencies: ["MariaDBVerify", "TandemVerify", "TandemCore", "TandemTestSupport", "MySQLClient"]),
        .testTarget(
            name: "TandemSeedTests",
            dependencies: [
                "TandemSeed", "TandemVerify", "TandemCore", "CaptureKit", "TandemStorage", "SeededRandom",
            ]),
        .testTarget(
            name: "PostgreSQLSeedTests",
            dependencies: [
                "PostgreSQLSeed", "PostgreSQLCapture", "CaptureKit", "TandemSeed", "TandemVerify", "TandemCore",
                "TandemTestSupport", "PGClient",
            ]),
        .testTarget(
            name: "MariaDBSeedTests",
            dependencies: [
                "MariaDBSeed", "MariaDBCapture", "MariaDBEngine", "MariaDBApply", "MariaDBVerify", "ApplyKit",
                "CaptureKit", "TandemSeed", "TandemVerify", "TandemCore", "TandemTestSupport", "MySQLClient",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(
            name: "MariaDBEngineTests",
            dependencies: ["MariaDBEngine", "TandemCore", "TandemTestSupport", "MySQLClient", "SeededRandom"]),
        // Whole pairs: two real database servers, two `tandem agent` processes, kill -9 at random.
        .testTarget(
            name: "PairTests",
            dependencies: [
                "TandemTestSupport", "PGClient", "MySQLClient", "TandemCore", "TandemStatus", "TandemVerify",
                "TandemSeed",
            ]),
        // Runs the built `tandem` binary as an operator would.
        .testTarget(name: "CLITests", dependencies: ["TandemTestSupport"]),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["TandemTestSupport", "PGClient", "MySQLClient", "TLSSupport", "ZstdSupport"]),
    ]
)
