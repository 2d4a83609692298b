import COpenSSL
import CTandemShims
import Foundation
import Synchronization
import TLSSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An established, mutually authenticated TLS 1.3 link connection.
///
/// Two ways to use it, not to be mixed within one direction:
/// - async: `receive()` returns chunks read ahead by a dedicated reader thread,
///   `send(_:)` queues bytes for a dedicated writer thread. The threads do the
///   blocking work, so the session's tasks never block a cooperative thread,
///   and reading and writing proceed in parallel (full duplex).
/// - blocking: `read(into:)` and `write(_:)`, for callers that run their own
///   threads (benchmarks, tools).
///
/// One reader and one writer may run at the same time. OpenSSL does not allow
/// two threads inside one `SSL` at once, so every call into it is serialised
/// by a lock that is held only for the call itself, never while waiting on the
/// socket (which is non-blocking; waits happen in poll(2) outside the lock).
///
/// With TLS 1.3 a client learns that the server refused its certificate only
/// when it next reads: the session protocol therefore has the server speak
/// first, and the client's first `receive()` throws `.refusedByPeer`.
///
/// `close()` is immediate and is also done when the object is released;
/// `finish()` delivers what is queued and sends TLS close_notify first.
public final class TLSConnection: @unchecked Sendable {
    // @unchecked: all mutable state lives in `core`, behind its locks.
    let core: ConnectionCore
    /// The certificate the peer presented and that verified.
    public let peerCertificate: Certificate
    /// The end of the handshake this side played (server = accepted by a listener).
    public let role: TLSRole

    init(core: ConnectionCore, peerCertificate: Certificate, role: TLSRole) {
        self.core = core
        self.peerCertificate = peerCertificate
        self.role = role
    }

    deinit { core.close() }

    /// `host:port` the peer connected from, or that was dialed.
    public var peerAddress: String { core.peerAddress }
    /// The peer's site name, verified against its certificate.
    public var peerSite: String { core.expectedSite }
    public var direction: TransportError.Direction { core.direction }
    /// "TLSv1.3".
    public var protocolVersion: String { core.withSSL { String(cString: SSL_get_version($0)) } }
    /// The negotiated cipher suite, e.g. "TLS_AES_256_GCM_SHA384".
    public var cipherSuite: String {
        core.withSSL { ssl in SSL_get_current_cipher(ssl).map { String(cString: SSL_CIPHER_get_name($0)) } ?? "" }
    }

    // MARK: Async edges

    /// The next chunk of received bytes (at most `readChunkBytes`), or nil once
    /// the peer has closed the connection cleanly. Call from one task at a time.
    public func receive() async throws(TransportError) -> [UInt8]? {
        try await core.receive().get()
    }

    /// Queues `bytes` to be written in order. Returns once they are queued and
    /// the queue is below `writeQueueBytes`; a write error is thrown by the
    /// next `send` or `flush`.
    public func send(_ bytes: [UInt8]) async throws(TransportError) {
        try await core.send(bytes).get()
    }

    /// Waits until everything sent so far has been handed to the kernel.
    public func flush() async throws(TransportError) {
        try await core.flush().get()
    }

    /// Delivers what is queued, sends TLS close_notify (so the peer's
    /// `receive()` ends with nil rather than an error) and closes.
    public func finish() async {
        _ = await core.flush()
        core.sendCloseNotify()
        core.close()
    }

    /// Closes at once: pending operations fail with `.closed` and the peer
    /// sees the connection end without close_notify. Idempotent.
    public func close() { core.close() }

    // MARK: Blocking

    /// Reads what is available into the (non-empty) buffer, waiting for at
    /// least one byte. Returns 0 once the peer has closed cleanly.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(TransportError) -> Int {
        try core.readAvailable(into: buffer)
    }

    /// Writes all of `bytes`, waiting as needed.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(TransportError) {
        try core.writeAll(bytes)
    }
}

/// The state and threads behind a `TLSConnection`. The reader and writer
/// threads retain the core, not the public object, so releasing the public
/// object closes the connection and lets the threads end.
final class ConnectionCore: @unchecked Sendable {
    // @unchecked: `ssl` is used only under `sslLock`; `readState` only under
    // `readCondition`, `writeState` only under `writeCondition`; `closedFlag`
    // is atomic; the rest is immutable.
    private let ssl: OpaquePointer
    private let descriptor: Int32
    let peerAddress: String
    let expectedSite: String
    let direction: TransportError.Direction
    private let options: TransportOptions

    private let sslLock = NSLock()
    private let closedFlag = Atomic<Bool>(false)
    /// The first failure of the connection, reported by every later call.
    private let failure = Mutex<TransportError?>(nil)

    init(
        ssl: OpaquePointer, descriptor: Int32, peerAddress: String, expectedSite: String,
        direction: TransportError.Direction, options: TransportOptions
    ) {
        self.ssl = ssl
        self.descriptor = descriptor
        self.peerAddress = peerAddress
        self.expectedSite = expectedSite
        self.direction = direction
        self.options = options
    }

    deinit {
        SSL_free(ssl)
        Glibc.close(descriptor)
    }

    func withSSL<T>(_ body: (OpaquePointer) -> T) -> T {
        sslLock.lock()
        defer { sslLock.unlock() }
        return body(ssl)
    }

    private var isClosed: Bool { closedFlag.load(ordering: .acquiring) }

    private func error(_ reason: TransportError.Reason) -> TransportError {
        TransportError(
            reason, direction: direction, peerAddress: peerAddress, presentedSite: expectedSite,
            expectedSite: expectedSite)
    }

    /// Records the first failure and returns the one to report.
    private func fail(_ error: TransportError) -> TransportError {
        failure.withLock { first in
            if first == nil { first = error }
            return first!
        }
    }

    private var closedError: TransportError { failure.withLock { $0 } ?? error(.closed) }

    func close() {
        guard !closedFlag.exchange(true, ordering: .acquiringAndReleasing) else { return }
        // Wakes any thread waiting in poll(2) on this socket; the descriptor
        // itself stays open until deinit, so its number cannot be reused by
        // another connection while a thread still holds it.
        shutdown(descriptor, Int32(SHUT_RDWR))
        readCondition.lock()
        readCondition.broadcast()
        readCondition.unlock()
        writeCondition.lock()
        writeCondition.broadcast()
        writeCondition.unlock()
    }

    // MARK: Blocking primitives

    private enum Step {
        case done(Int)
        case wait(Int16)
        case endOfStream
        case failed(TransportError)
    }

    private func sslStep(_ call: (OpaquePointer, UnsafeMutablePointer<Int>) -> Int32) -> Step {
        sslLock.lock()
        defer { sslLock.unlock() }
        ERR_clear_error()
        var count = 0
        let result = call(ssl, &count)
        if result == 1 { return .done(count) }
        let captured = OpenSSLFailure.capture(ssl, result: result)
        switch captured.sslError {
        case SSL_ERROR_WANT_READ: return .wait(Int16(POLLIN))
        case SSL_ERROR_WANT_WRITE: return .wait(Int16(POLLOUT))
        case SSL_ERROR_ZERO_RETURN: return .endOfStream
        default:
            if isClosed { return .failed(closedError) }
            return .failed(fail(error(captured.reason(ssl, duringHandshake: false))))
        }
    }

    /// Reads at least one byte (waiting for it), then whatever else is ready
    /// without waiting, up to the buffer's size. 0 means a clean end of stream.
    func readAvailable(into buffer: UnsafeMutableRawBufferPointer) throws(TransportError) -> Int {
        precondition(buffer.count > 0, "reading into an empty buffer would look like the end of the stream")
        var filled = 0
        while filled < buffer.count {
            if isClosed { throw closedError }
            let step = sslStep { ssl, count in
                SSL_read_ex(ssl, buffer.baseAddress! + filled, buffer.count - filled, count)
            }
            switch step {
            case .done(let count):
                filled += count
            case .wait(let events):
                if filled > 0 { return filled }
                _ = Sockets.wait(descriptor, for: events, milliseconds: -1)
            case .endOfStream:
                return filled
            case .failed(let failure):
                if filled > 0 { return filled }  // deliver what arrived; the error repeats on the next read
                throw failure
            }
        }
        return filled
    }

    func writeAll(_ bytes: UnsafeRawBufferPointer) throws(TransportError) {
        var offset = 0
        while offset < bytes.count {
            if isClosed { throw closedError }
            let step = sslStep { ssl, count in
                SSL_write_ex(ssl, bytes.baseAddress! + offset, bytes.count - offset, count)
            }
            switch step {
            case .done(let count): offset += count
            case .wait(let events): _ = Sockets.wait(descriptor, for: events, milliseconds: -1)
            case .endOfStream: throw fail(error(.connectionLost(detail: "the peer closed the connection")))
            case .failed(let failure): throw failure
            }
        }
    }

    /// Sends close_notify, waiting at most a second for socket space.
    func sendCloseNotify() {
        guard !isClosed else { return }
        let deadline = ContinuousClock.now.advanced(by: .seconds(1))
        while true {
            let step: Step = sslStep { ssl, _ in
                let result = SSL_shutdown(ssl)
                return result >= 0 ? 1 : result
            }
            guard case .wait(let events) = step else { return }
            let slice = Sockets.slice(until: deadline)
            if slice == 0 || isClosed { return }
            _ = Sockets.wait(descriptor, for: events, milliseconds: slice)
        }
    }

    // MARK: Reader thread

    private struct ReadState {
        var started = false
        var chunks: [[UInt8]] = []
        /// nil while reading; `.success` after a clean end of stream.
        var end: Result<Void, TransportError>?
        var waiter: CheckedContinuation<Result<[UInt8]?, TransportError>, Never>?
    }

    /// Guards `readState`; the reader thread waits on it for room in `chunks`.
    private let readCondition = NSCondition()
    private var readState = ReadState()

    func receive() async -> Result<[UInt8]?, TransportError> {
        await withCheckedContinuation { continuation in
            readCondition.lock()
            if !readState.started {
                readState.started = true
                startThread(name: "tandem-tls-reader") { $0.readerLoop() }
            }
            let immediate: Result<[UInt8]?, TransportError>?
            if !readState.chunks.isEmpty {
                immediate = .success(readState.chunks.removeFirst())
                readCondition.signal()
            } else if let end = readState.end {
                immediate = end.map { () -> [UInt8]? in nil }
            } else {
                precondition(readState.waiter == nil, "TLSConnection.receive() called from two tasks at once")
                readState.waiter = continuation
                immediate = nil
            }
            readCondition.unlock()
            if let immediate { continuation.resume(returning: immediate) }
        }
    }

    private func readerLoop() {
        let limit = options.readAheadChunks
        let chunkSize = options.readChunkBytes
        while true {
            readCondition.lock()
            while readState.chunks.count >= limit && !isClosed {
                readCondition.wait()
            }
            readCondition.unlock()

            var failure: TransportError?
            let chunk = [UInt8](unsafeUninitializedCapacity: chunkSize) { buffer, initialized in
                do throws(TransportError) {
                    initialized = try readAvailable(into: UnsafeMutableRawBufferPointer(buffer))
                } catch {
                    failure = error
                    initialized = 0
                }
            }
            let delivered: Result<[UInt8]?, TransportError>
            if let failure {
                delivered = .failure(failure)
            } else {
                delivered = .success(chunk.isEmpty ? nil : chunk)
            }
            let finished = failure != nil || chunk.isEmpty

            readCondition.lock()
            if finished { readState.end = failure.map { .failure($0) } ?? .success(()) }
            let waiter = readState.waiter
            readState.waiter = nil
            if waiter == nil, !chunk.isEmpty { readState.chunks.append(chunk) }
            readCondition.unlock()
            waiter?.resume(returning: delivered)
            if finished { return }
        }
    }

    // MARK: Writer thread

    private struct WriteState {
        var started = false
        var queue: [[UInt8]] = []
        /// Bytes queued or being written.
        var pendingBytes = 0
        var writing = false
        var failure: TransportError?
        var spaceWaiters: [CheckedContinuation<Result<Void, TransportError>, Never>] = []
        var flushWaiters: [CheckedContinuation<Result<Void, TransportError>, Never>] = []
    }

    /// Guards `writeState`; the writer thread waits on it for work.
    private let writeCondition = NSCondition()
    private var writeState = WriteState()

    func send(_ bytes: [UInt8]) async -> Result<Void, TransportError> {
        guard !bytes.isEmpty else { return .success(()) }
        return await withCheckedContinuation { continuation in
            writeCondition.lock()
            if let failure = writeState.failure {
                writeCondition.unlock()
                continuation.resume(returning: .failure(failure))
                return
            }
            if isClosed {
                writeCondition.unlock()
                continuation.resume(returning: .failure(closedError))
                return
            }
            if !writeState.started {
                writeState.started = true
                startThread(name: "tandem-tls-writer") { $0.writerLoop() }
            }
            writeState.queue.append(bytes)
            writeState.pendingBytes += bytes.count
            writeCondition.signal()
            if writeState.pendingBytes <= options.writeQueueBytes {
                writeCondition.unlock()
                continuation.resume(returning: .success(()))
            } else {
                writeState.spaceWaiters.append(continuation)
                writeCondition.unlock()
            }
        }
    }

    func flush() async -> Result<Void, TransportError> {
        await withCheckedContinuation { continuation in
            writeCondition.lock()
            if let failure = writeState.failure {
                writeCondition.unlock()
                continuation.resume(returning: .failure(failure))
            } else if writeState.pendingBytes == 0 {
                writeCondition.unlock()
                continuation.resume(returning: isClosed ? .failure(closedError) : .success(()))
            } else {
                writeState.flushWaiters.append(continuation)
                writeCondition.unlock()
            }
        }
    }

    /// Small frames queued together are coalesced into one buffer of up to
    /// this size, so they leave as full TLS records rather than one record
    /// (and one lock round trip) each.
    private static let coalesceBytes = 256 * 1024

    private func writerLoop() {
        while true {
            writeCondition.lock()
            while writeState.queue.isEmpty && !isClosed {
                writeCondition.wait()
            }
            if isClosed {
                finishWriter(with: closedError)
                writeCondition.unlock()
                return
            }
            var buffer = writeState.queue.removeFirst()
            while let next = writeState.queue.first, buffer.count + next.count <= Self.coalesceBytes {
                buffer.append(contentsOf: next)
                writeState.queue.removeFirst()
            }
            writeState.writing = true
            writeCondition.unlock()

            var failure: TransportError?
            buffer.withUnsafeBytes { raw in
                do throws(TransportError) {
                    try writeAll(raw)
                } catch {
                    failure = error
                }
            }

            writeCondition.lock()
            writeState.writing = false
            if let failure {
                finishWriter(with: failure)
                writeCondition.unlock()
                return
            }
            writeState.pendingBytes -= buffer.count
            if writeState.pendingBytes <= options.writeQueueBytes {
                let waiters = writeState.spaceWaiters
                writeState.spaceWaiters = []
                for waiter in waiters { waiter.resume(returning: .success(())) }
            }
            if writeState.pendingBytes == 0 {
                let waiters = writeState.flushWaiters
                writeState.flushWaiters = []
                for waiter in waiters { waiter.resume(returning: .success(())) }
            }
            writeCondition.unlock()
        }
    }

    /// Called with `writeCondition` locked when the writer stops for good.
    private func finishWriter(with failure: TransportError) {
        if writeState.failure == nil { writeState.failure = failure }
        let waiters = writeState.spaceWaiters + writeState.flushWaiters
        writeState.spaceWaiters = []
        writeState.flushWaiters = []
        writeState.queue = []
        for waiter in waiters { waiter.resume(returning: .failure(writeState.failure!)) }
    }

    private func startThread(name: String, _ body: @escaping @Sendable (ConnectionCore) -> Void) {
        let thread = Thread { [self] in body(self) }
        thread.name = name
        thread.start()
    }
}
