import COpenSSL

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The few file operations the pair tooling needs, done with system calls so
/// that the permission and no-overwrite guarantees are exact.
enum PEMFile {
    struct Failure: Error, Sendable {
        var reason: String
        var errorNumber: Int32

        init(_ reason: String, errno code: Int32) {
            self.reason = reason
            self.errorNumber = code
        }

        static func system(_ call: String, _ code: Int32 = errno) -> Failure {
            Failure("\(call): \(String(cString: strerror(code)))", errno: code)
        }
    }

    /// Permission bits of private key files: readable by the owner only.
    static let keyMode: mode_t = 0o600
    /// Permission bits of certificates, which are public.
    static let certificateMode: mode_t = 0o644
    /// A PEM certificate or key is a few KiB; anything larger is the wrong file.
    static let sizeLimit = 1 << 20

    /// Parses PEM text with one of OpenSSL's `PEM_read_bio_*` readers through a
    /// memory BIO; on failure the calling thread's OpenSSL error queue is drained
    /// into the error, naming `what` was being read.
    static func parse(_ pem: String, what: String, _ read: (OpaquePointer) -> OpaquePointer?) throws(OpenSSLError)
        -> OpaquePointer
    {
        ERR_clear_error()
        let bytes = Array(pem.utf8)
        let parsed: OpaquePointer? = bytes.withUnsafeBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            return read(bio)
        }
        guard let parsed else { throw OpenSSLError.drain(operation: "reading \(what)") }
        return parsed
    }

    /// `readText`, with a failure reported as an `OpenSSLError` for `operation`.
    static func readText(_ path: String, operation: String) throws(OpenSSLError) -> String {
        do {
            return try readText(path)
        } catch {
            throw OpenSSLError(operation: operation, reasons: [error.reason])
        }
    }

    static func readText(_ path: String) throws(Failure) -> String {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw Failure.system("cannot open") }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw Failure.system("cannot read")
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk.prefix(count))
            if bytes.count > sizeLimit { throw Failure("larger than \(sizeLimit) bytes, not a PEM file", errno: EFBIG) }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Creates `path` with exactly `mode` and writes `text` to it, durably.
    ///
    /// The file is created by this call or not at all (O_EXCL): an existing
    /// file is never overwritten or truncated, and a key is never readable by
    /// anyone else for even a moment, as it would be between a create and a
    /// later chmod. The umask can only remove bits, never widen `mode`.
    static func createNew(_ path: String, text: String, mode: mode_t) throws(Failure) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw Failure.system("cannot create") }
        var failure: Failure?
        var bytes = Array(text.utf8)
        bytes.withUnsafeMutableBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = write(descriptor, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = Failure.system("cannot write")
                    return
                }
                offset += written
            }
        }
        if failure == nil, fsync(descriptor) != 0 { failure = Failure.system("cannot fsync") }
        close(descriptor)
        if let failure {
            unlink(path)
            throw failure
        }
    }

    static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// The permission bits of `path`, or nil if it cannot be examined.
    static func permissions(_ path: String) -> mode_t? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return info.st_mode & 0o7777
    }

    static func makeDirectory(_ path: String, mode: mode_t) throws(Failure) {
        guard mkdir(path, mode) == 0 else { throw Failure.system("cannot create directory") }
    }

    static func move(_ from: String, to: String) throws(Failure) {
        guard rename(from, to) == 0 else { throw Failure.system("cannot rename") }
    }

    /// Makes the entries created or renamed in `directory` durable.
    static func syncDirectory(_ directory: String) {
        let descriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        _ = fsync(descriptor)
        close(descriptor)
    }

    /// `path` without its last component ("." for a bare name).
    static func parent(of path: String) -> String {
        let trimmed = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        guard let slash = trimmed.lastIndex(of: "/") else { return "." }
        return slash == trimmed.startIndex ? "/" : String(trimmed[..<slash])
    }
}
