// swift-tools-version:6.1
//
// Tandem — disaster-recovery replication appliance.
//
// The target graph mirrors the architecture (README, "Architecture"):
//   CLibraries/  system-library targets for the four C libraries the design names,
//                plus one tiny C shim for function-like macros and CRC32C.
//   Clients/     thin Swift wrappers that own the C handles (libpq, MySQL client,
//                OpenSSL, zstd) and turn C errors into typed Swift errors.
//   Core/        pure types: the engine-neutral change model, positions, batches,
//                and the batch codec. No sockets, no database, no filesystem.
//   Config/      the per-site TOML configuration and its validation.
//   CLI/         the `tandem` command-line tool.
//   Benchmarks/  release-mode benchmark executables (never timed tests).
import PackageDescription

let package = Package(
    name: "Tandem",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "tandem", targets: ["tandem"]),
        .executable(name: "tandem-bench", targets: ["TandemBench"]),
        .executable(name: "tandem-linkbench", targets: ["LinkBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.0"),
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
                "PostgreSQLEngine", "PGClient", "CLibPQ", "TandemCore", "TandemCodec", "TandemAgent",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Engines/PostgreSQLCapture"),
        // PostgreSQL apply (applier side): the `BatchSink` writing batches into the DR database.
        .target(
            name: "PostgreSQLApply",
            dependencies: [
                "PGClient", "CLibPQ", "TandemCore", "TandemCodec", "TandemAgent",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Engines/PostgreSQLApply"),
        // MariaDB binlog groundwork: pure event and row-image decoding. No I/O.
        .target(name: "MariaDBEngine", dependencies: ["TandemCore", "CZlib"], path: "Sources/Engines/MariaDBEngine"),
        // MariaDB capture (shipper side): the binlog dump connection and the `BatchSource` on it.
        .target(
            name: "MariaDBCapture",
            dependencies: [
                "MariaDBEngine", "MySQLClient", "CMariaDB", "TandemCore", "TandemCodec", "TandemAgent",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Engines/MariaDBCapture"),
        // MariaDB apply (applier side): the `BatchSink` writing batches into the DR server.
        .target(
            name: "MariaDBApply",
            dependencies: [
                "MySQLClient", "CMariaDB", "TandemCore", "TandemCodec", "TandemAgent",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Engines/MariaDBApply"),

        // MARK: Link and transport
        // The session protocol between shipper and applier, as pure state machines.
        .target(name: "TandemLink", dependencies: ["TandemCore"], path: "Sources/Link/TandemLink"),
        // The applier's durable, append-only batch spool.
        .target(
            name: "TandemSpool", dependencies: ["TandemCore", "TandemCodec", "CTandemShims"],
            path: "Sources/Transport/TandemSpool"),

        // TLS 1.3 mutual-auth connections over sockets: listen or dial, peer pinning.
        .target(
            name: "TandemTransport", dependencies: ["TLSSupport", "COpenSSL", "CTandemShims", "TandemCore"],
            path: "Sources/Transport/TandemTransport"),

        // MARK: Services
        // The site agent's shipper and applier: run the link, spool and engine ports together.
        .target(
            name: "TandemAgent",
            dependencies: [
                "TandemCore", "TandemCodec", "TandemLink", "TandemSpool", "TandemTransport", "TLSSupport",
                "TandemConfig", .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Services/TandemAgent"),

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
                "TandemLink", "TandemSpool", "TandemTransport", "TandemAgent", "PostgreSQLCapture", "PostgreSQLApply",
                "MariaDBCapture", "MariaDBApply",
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
        .target(
            name: "TandemTestSupport",
            dependencies: ["PGClient", "MySQLClient", "TandemAgent", "TandemCodec", "TandemCore", "SeededRandom"],
            path: "Tests/TandemTestSupport"),
        .testTarget(
            name: "TandemCoreTests",
            dependencies: ["TandemCore", .product(name: "PropertyBased", package: "swift-property-based")]),
        .testTarget(
            name: "TandemCodecTests",
            dependencies: [
                "TandemCore", "TandemCodec", "ZstdSupport", "CTandemShims", "SeededRandom",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]),
        .testTarget(name: "TandemConfigTests", dependencies: ["TandemConfig", "TandemCore"]),
        .testTarget(name: "TandemLinkTests", dependencies: ["TandemLink", "TandemCore", "SeededRandom"]),
        .testTarget(name: "TandemSpoolTests", dependencies: ["TandemSpool", "TandemCodec", "TandemCore", "TandemTestSupport"]),
        .testTarget(name: "TLSSupportTests", dependencies: ["TLSSupport", "COpenSSL", "TandemConfig"]),
        .testTarget(name: "TandemTransportTests", dependencies: ["TandemTransport", "TLSSupport"]),
        // Runs two `tandem agent` processes against each other (synthetic source and sink).
        .testTarget(
            name: "TandemAgentTests",
            dependencies: [
                "TandemAgent", "TandemTestSupport", "TandemCore", "TandemCodec", "TandemLink", "TandemTransport", "TLSSupport",
                "SeededRandom", .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(
            name: "PostgreSQLEngineTests",
            dependencies: ["PostgreSQLEngine", "TandemCore", "TandemTestSupport", "PGClient", "SeededRandom"]),
        .testTarget(
            name: "PostgreSQLCaptureTests",
            dependencies: ["PostgreSQLCapture", "PostgreSQLEngine", "TandemAgent", "TandemCodec", "TandemCore", "TandemTestSupport", "PGClient"]),
        .testTarget(
            name: "PostgreSQLApplyTests",
            dependencies: ["PostgreSQLApply", "TandemAgent", "TandemCodec", "TandemCore", "TandemTestSupport", "PGClient"]),
        .testTarget(
            name: "MariaDBCaptureTests",
            dependencies: ["MariaDBCapture", "MariaDBEngine", "TandemAgent", "TandemCodec", "TandemCore", "TandemTestSupport", "MySQLClient"]),
        .testTarget(
            name: "MariaDBApplyTests",
            dependencies: ["MariaDBApply", "TandemAgent", "TandemCodec", "TandemCore", "TandemTestSupport", "MySQLClient"]),
        .testTarget(
            name: "MariaDBEngineTests",
            dependencies: ["MariaDBEngine", "TandemCore", "TandemTestSupport", "MySQLClient", "SeededRandom"]),
        // Whole pairs: two real database servers, two `tandem agent` processes, kill -9 at random.
        .testTarget(
            name: "PairTests",
            dependencies: ["TandemTestSupport", "PGClient", "MySQLClient", "TandemCore"]),
        // Runs the built `tandem` binary as an operator would.
        .testTarget(name: "CLITests", dependencies: ["TandemTestSupport"]),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["TandemTestSupport", "PGClient", "MySQLClient", "TLSSupport", "ZstdSupport"]),
    ]
)
