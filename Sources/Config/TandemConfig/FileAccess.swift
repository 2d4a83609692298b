#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The little file-system access configuration loading needs, done with POSIX
/// calls so that errors carry the real reason (`strerror`) and so that the
/// permission check and the read happen on the same open descriptor: checking
/// a path and then reading it would let the file change in between.
enum FileAccess {
    struct Contents {
        var bytes: [UInt8]
        /// Permission bits (`st_mode & 0o7777`).
        var permissions: UInt32
    }

    enum Problem: Error, Equatable {
        case open(errno: Int32)
        case notRegularFile
        case tooLarge(limit: Int)
        case read(errno: Int32)

        var text: String {
            switch self {
            case .open(let code), .read(let code): FileAccess.describe(errno: code)
            case .notRegularFile: "it is not a regular file"
            case .tooLarge(let limit): "it is larger than \(ByteSize(bytes: limit))"
            }
        }

        var isMissing: Bool { self == .open(errno: ENOENT) }
    }

    /// Reads a regular file of at most `limit` bytes.
    static func read(_ path: String, limit: Int) -> Result<Contents, Problem> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(.open(errno: errno)) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return .failure(.read(errno: errno)) }
        guard (UInt32(info.st_mode) & UInt32(S_IFMT)) == UInt32(S_IFREG) else {
            return .failure(.notRegularFile)
        }
        guard Int(info.st_size) <= limit else { return .failure(.tooLarge(limit: limit)) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(.read(errno: errno))
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
            // The size can change between fstat and read; the limit still holds.
            if bytes.count > limit { return .failure(.tooLarge(limit: limit)) }
        }
        return .success(Contents(bytes: bytes, permissions: UInt32(info.st_mode) & 0o7777))
    }

    static func describe(errno code: Int32) -> String {
        switch code {
        case ENOENT: "no such file"
        case EACCES: "permission denied"
        case EISDIR: "it is a directory"
        default:
            if let message = strerror(code) { String(cString: message).lowercased() } else { "error \(code)" }
        }
    }

    static func currentDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return "/" }
        return String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// `read(2)`, named apart from the `FileAccess.read` above.
@inline(__always)
private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    #if canImport(Darwin)
        Darwin.read(fd, buffer, count)
    #elseif canImport(Musl)
        Musl.read(fd, buffer, count)
    #else
        Glibc.read(fd, buffer, count)
    #endif
}

/// Lexical path handling. Paths in a configuration file are resolved against
/// the file's own directory, not the agent's working directory, so a site can
/// keep its certificates next to its `site.toml` and the meaning of the file
/// does not depend on how the agent was started. Resolution is purely textual
/// and touches no file (they may be created later). `..` is kept as written:
/// collapsing it textually would be wrong when a directory is a symlink.
enum Paths {
    /// The absolute directory containing `file`.
    static func directory(of file: String) -> String {
        let absolute = file.hasPrefix("/") ? file : currentDirectoryJoined(file)
        let normalized = normalize(absolute)
        guard let slash = normalized.lastIndex(of: "/") else { return "/" }
        let directory = String(normalized[..<slash])
        return directory.isEmpty ? "/" : directory
    }

    static func resolve(_ path: String, against base: String) -> String {
        normalize(path.hasPrefix("/") ? path : base + "/" + path)
    }

    /// Collapses `//` and `.` components of an absolute path.
    static func normalize(_ path: String) -> String {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
        return "/" + parts.joined(separator: "/")
    }

    private static func currentDirectoryJoined(_ file: String) -> String {
        FileAccess.currentDirectory() + "/" + file
    }
}
