#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A system call that failed: which one, and `errno`.
struct SystemCallError: Error, Sendable, Hashable {
    var call: String
    var code: Int32

    init(_ call: String, _ code: Int32) {
        self.call = call
        self.code = code
    }

    /// True for the errors that mean "no room": the disk or the user's quota is full.
    var isNoSpace: Bool { code == ENOSPC || code == EDQUOT }
}

/// Every file-system operation the spool performs.
///
/// The spool never touches the file system except through this protocol, so that
/// tests can make any write fail at a chosen byte (ENOSPC, EIO), fail an fsync or a
/// truncate, or "crash" (every call failing from some point on) and then restart by
/// reopening with the real implementation. Calls are thin: no retries beyond EINTR,
/// no buffering; short writes are returned as such and the spool loops.
protocol SpoolIO: Sendable {
    func openFile(_ path: String, flags: Int32, mode: mode_t) throws(SystemCallError) -> Int32
    /// Opens a directory read-only, for `fsync` (making entries durable) and `flock`.
    func openDirectory(_ path: String) throws(SystemCallError) -> Int32
    func close(_ fd: Int32)
    func pwrite(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int64) throws(SystemCallError) -> Int
    func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(SystemCallError) -> Int
    func fdatasync(_ fd: Int32) throws(SystemCallError)
    func fsync(_ fd: Int32) throws(SystemCallError)
    func ftruncate(_ fd: Int32, to length: Int64) throws(SystemCallError)
    func fileSize(_ fd: Int32) throws(SystemCallError) -> Int64
    func rename(_ from: String, _ to: String) throws(SystemCallError)
    func unlink(_ path: String) throws(SystemCallError)
    func mkdir(_ path: String, mode: mode_t) throws(SystemCallError)
    /// Names in a directory, without "." and "..".
    func listDirectory(_ path: String) throws(SystemCallError) -> [String]
    /// A non-blocking exclusive `flock`: fails with EWOULDBLOCK when another open
    /// file description holds it (another process, or another `Spool` in this one).
    func lockExclusive(_ fd: Int32) throws(SystemCallError)
}

/// The real thing: POSIX calls, retried on EINTR only.
struct POSIXSpoolIO: SpoolIO {
    func openFile(_ path: String, flags: Int32, mode: mode_t) throws(SystemCallError) -> Int32 {
        while true {
            let fd = open(path, flags | O_CLOEXEC, mode)
            if fd >= 0 { return fd }
            if errno != EINTR { throw SystemCallError("open", errno) }
        }
    }

    func openDirectory(_ path: String) throws(SystemCallError) -> Int32 {
        while true {
            let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if fd >= 0 { return fd }
            if errno != EINTR { throw SystemCallError("open", errno) }
        }
    }

    func close(_ fd: Int32) {
        // Linux releases the descriptor even when close reports EINTR; never retry.
        _ = systemClose(fd)
    }

    func pwrite(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int64) throws(SystemCallError) -> Int {
        while true {
            let n = systemPwrite(fd, bytes.baseAddress, bytes.count, off_t(offset))
            if n >= 0 { return n }
            if errno != EINTR { throw SystemCallError("pwrite", errno) }
        }
    }

    func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(SystemCallError) -> Int
    {
        while true {
            let n = systemPread(fd, buffer.baseAddress, buffer.count, off_t(offset))
            if n >= 0 { return n }
            if errno != EINTR { throw SystemCallError("pread", errno) }
        }
    }

    func fdatasync(_ fd: Int32) throws(SystemCallError) {
        #if os(Linux)
            while systemFdatasync(fd) != 0 { if errno != EINTR { throw SystemCallError("fdatasync", errno) } }
        #else
            try fsync(fd)
        #endif
    }

    func fsync(_ fd: Int32) throws(SystemCallError) {
        while systemFsync(fd) != 0 { if errno != EINTR { throw SystemCallError("fsync", errno) } }
    }

    func ftruncate(_ fd: Int32, to length: Int64) throws(SystemCallError) {
        while systemFtruncate(fd, off_t(length)) != 0 {
            if errno != EINTR { throw SystemCallError("ftruncate", errno) }
        }
    }

    func fileSize(_ fd: Int32) throws(SystemCallError) -> Int64 {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw SystemCallError("fstat", errno) }
        return Int64(info.st_size)
    }

    func rename(_ from: String, _ to: String) throws(SystemCallError) {
        guard systemRename(from, to) == 0 else { throw SystemCallError("rename", errno) }
    }

    func unlink(_ path: String) throws(SystemCallError) {
        guard systemUnlink(path) == 0 else { throw SystemCallError("unlink", errno) }
    }

    func mkdir(_ path: String, mode: mode_t) throws(SystemCallError) {
        guard systemMkdir(path, mode) == 0 else { throw SystemCallError("mkdir", errno) }
    }

    func listDirectory(_ path: String) throws(SystemCallError) -> [String] {
        guard let dir = opendir(path) else { throw SystemCallError("opendir", errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while true {
            errno = 0
            guard let entry = readdir(dir) else {
                if errno != 0 { throw SystemCallError("readdir", errno) }
                return names
            }
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
    }

    func lockExclusive(_ fd: Int32) throws(SystemCallError) {
        while flock(fd, LOCK_EX | LOCK_NB) != 0 { if errno != EINTR { throw SystemCallError("flock", errno) } }
    }
}

// The protocol's method names shadow the C functions inside the type; these
// file-level aliases reach the C library unambiguously.
private func systemClose(_ fd: Int32) -> Int32 { close(fd) }
private func systemPwrite(_ fd: Int32, _ p: UnsafeRawPointer?, _ n: Int, _ o: off_t) -> Int { pwrite(fd, p, n, o) }
private func systemPread(_ fd: Int32, _ p: UnsafeMutableRawPointer?, _ n: Int, _ o: off_t) -> Int { pread(fd, p, n, o) }
#if os(Linux)
    private func systemFdatasync(_ fd: Int32) -> Int32 { fdatasync(fd) }
#endif
private func systemFsync(_ fd: Int32) -> Int32 { fsync(fd) }
private func systemFtruncate(_ fd: Int32, _ length: off_t) -> Int32 { ftruncate(fd, length) }
private func systemRename(_ a: String, _ b: String) -> Int32 { rename(a, b) }
private func systemUnlink(_ path: String) -> Int32 { unlink(path) }
private func systemMkdir(_ path: String, _ mode: mode_t) -> Int32 { mkdir(path, mode) }

/// `strerror` text for an errno value, e.g. "No space left on device".
func errnoText(_ code: Int32) -> String {
    guard let text = strerror(code) else { return "errno \(code)" }
    return String(cString: text)
}

// `Array.withUnsafe(Mutable)Bytes` only rethrows untyped errors; these keep the
// closure's typed error.
extension Array where Element == UInt8 {
    func withRawBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try withUnsafeBytes { raw in Result { () throws(E) -> R in try body(raw) } }.get()
    }

    mutating func withMutableRawBytes<R, E: Error>(_ body: (UnsafeMutableRawBufferPointer) throws(E) -> R) throws(E)
        -> R
    {
        try withUnsafeMutableBytes { raw in Result { () throws(E) -> R in try body(raw) } }.get()
    }
}
