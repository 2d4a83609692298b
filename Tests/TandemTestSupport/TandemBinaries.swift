import Foundation

/// The test suite's one locator for the executables of this build: `swift build --build-tests`
/// puts `tandem`, `tandem-test-agent` and `tandem-linkbench` next to the test bundle. `TANDEM_TEST_BIN_DIR`
/// points elsewhere (e.g. a release build).
public enum TandemBinaries {
    public static var directory: String {
        if let override = ProcessInfo.processInfo.environment["TANDEM_TEST_BIN_DIR"], !override.isEmpty {
            return override
        }
        return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
    }

    /// The `tandem` command-line tool.
    public static var tandem: String { directory + "/tandem" }

    /// `tandem-test-agent`: the agent as `tandem agent` starts it, with synthetic parts and short
    /// delays on request (never shipped).
    public static var testAgent: String { directory + "/tandem-test-agent" }

    /// `tandem-linkbench` (the WAN test's TUN delay line).
    public static var linkBench: String { directory + "/tandem-linkbench" }
}
