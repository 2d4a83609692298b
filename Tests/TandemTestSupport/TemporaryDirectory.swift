import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The test suite's scoped temporary directory: a fresh `/tmp/tandem-<label>-XXXXXX`
/// (mode 0700, from `mkdtemp`), removed by `remove()` or at the end of
/// `withTemporaryDirectory`.
///
/// Tests remove it with `defer { dir.remove() }` rather than relying on `deinit`: that also
/// keeps the object alive to the end of the test (ARC may end an object's life after its
/// last use, so a deinit-based cleanup could run while a spool in it is still open).
/// `TANDEM_TEST_KEEP_DIRS=1` keeps every directory for inspection after a failing run.
/// (Database servers use `TestDirectory`, whose layout the cleanup script knows.)
public final class TemporaryDirectory: Sendable {
    public let path: String

    /// `label` must not be "test": `tandem-test-*` belongs to the servers' cleanup script.
    public init(_ label: String = "scratch") {
        let base = ProcessInfo.processInfo.environment["TANDEM_TEST_TMPDIR"] ?? "/tmp"
        var template = Array("\(base)/tandem-\(label)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp \(base)/tandem-\(label)-XXXXXX failed: \(String(cString: strerror(errno)))")
        path = String(cString: made!)
    }

    /// A path inside the directory (not created).
    public func file(_ name: String) -> String { path + "/" + name }

    public func remove() {
        if ProcessInfo.processInfo.environment["TANDEM_TEST_KEEP_DIRS"] == "1" { return }
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Runs `body` with a fresh temporary directory and removes it afterwards, also when `body` throws.
public func withTemporaryDirectory<T>(
    _ label: String = "scratch", _ body: (TemporaryDirectory) throws -> T
) rethrows -> T {
    let directory = TemporaryDirectory(label)
    defer { directory.remove() }
    return try body(directory)
}

/// Async `withTemporaryDirectory`.
public func withTemporaryDirectory<T>(
    _ label: String = "scratch", isolation: isolated (any Actor)? = #isolation,
    _ body: (TemporaryDirectory) async throws -> T
) async rethrows -> T {
    let directory = TemporaryDirectory(label)
    defer { directory.remove() }
    return try await body(directory)
}

/// A fresh temporary directory's path; the caller removes it (prefer `TemporaryDirectory`).
public func makeTemporaryDirectory(prefix: String) throws -> String {
    TemporaryDirectory(prefix.hasPrefix("tandem-") ? String(prefix.dropFirst("tandem-".count)) : prefix).path
}
