import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A small file that must survive a crash whole: the pair journal, a capture's state.
///
/// `replace(with:)` writes a temporary file beside the target, fsyncs it, renames it over the
/// target and fsyncs the directory. A crash at any moment leaves either the old content or the
/// new one, and once the call returns the new content survives a power loss; every step's
/// failure is reported, none is ignored.
///
/// `load()` tells the three cases a caller must treat differently: the file is absent (a first
/// start), present and readable (parse it), or present but unreadable (`DurableFileError`:
/// permissions, I/O). Content that reads but does not parse is the caller's "damaged" case; it
/// must never be taken for "absent", since a first start records fresh state over what the
/// damaged file knew (for a capture, which primary and which position the DR copy belongs to).
public struct DurableFile: Sendable, Hashable {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    public var directory: String { (path as NSString).deletingLastPathComponent }

    /// The file's bytes, nil when it does not exist.
    public func load() throws(DurableFileError) -> [UInt8]? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            if errno == ENOENT { return nil }
            throw DurableFileError(path: path, operation: "open", code: errno)
        }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw DurableFileError(path: path, operation: "read", code: errno)
            }
            if count == 0 { return bytes }
            bytes += buffer[0..<count]
        }
    }

    /// Atomically and durably replaces the file's content (see the type's documentation).
    public func replace(with bytes: [UInt8], permissions: mode_t = 0o640) throws(DurableFileError) {
        let directory = self.directory
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw DurableFileError(path: directory, operation: "create the directory", reason: "\(error)")
        }
        let temporary = path + ".tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, permissions)
        guard descriptor >= 0 else { throw DurableFileError(path: temporary, operation: "create", code: errno) }
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + written, $0.count - written) }
            if count < 0 {
                if errno == EINTR { continue }
                let code = errno
                close(descriptor)
                unlink(temporary)
                throw DurableFileError(path: temporary, operation: "write", code: code)
            }
            written += count
        }
        guard fsync(descriptor) == 0 else {
            let code = errno
            close(descriptor)
            unlink(temporary)
            throw DurableFileError(path: temporary, operation: "fsync", code: code)
        }
        guard close(descriptor) == 0 else {
            let code = errno
            unlink(temporary)
            throw DurableFileError(path: temporary, operation: "close", code: code)
        }
        guard rename(temporary, path) == 0 else {
            let code = errno
            unlink(temporary)
            throw DurableFileError(path: path, operation: "rename \(temporary) to", code: code)
        }
        let directoryDescriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directoryDescriptor >= 0 else {
            throw DurableFileError(path: directory, operation: "open the directory", code: errno)
        }
        defer { close(directoryDescriptor) }
        guard fsync(directoryDescriptor) == 0 else {
            throw DurableFileError(path: directory, operation: "fsync the directory", code: errno)
        }
    }
}

/// A durable file that could not be read or written: which file, what was being done, and why.
public struct DurableFileError: Error, Sendable, Hashable, CustomStringConvertible {
    public var path: String
    public var operation: String
    public var reason: String

    public init(path: String, operation: String, reason: String) {
        self.path = path
        self.operation = operation
        self.reason = reason
    }

    init(path: String, operation: String, code: Int32) {
        self.init(path: path, operation: operation, reason: String(cString: strerror(code)))
    }

    public var description: String { "cannot \(operation) \(path): \(reason)" }

    /// What an operator checks first.
    public var hint: String { "Check the directory's permissions, free space and the disk." }
}
