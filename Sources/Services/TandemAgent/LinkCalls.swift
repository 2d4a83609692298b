import Dispatch
import Foundation
import TandemCore
import TandemLink

/// The agents' calls to each other over the pair's link (REQUEST and RESPONSE frames): this
/// agent's requests waiting for answers, and the handlers that answer the peer's, one per
/// `Channel` (a request's first byte names its channel; the rest is the channel's own body).
///
/// A call is only ever answered on the connection it was asked on: when the link goes down,
/// every call waiting fails at once ("the link to the peer went down"), and a request that
/// could not be sent fails at once too. The caller decides whether to ask again. Handlers run
/// on threads of their own (they query the database), never on the agent's event loop or on
/// Swift's cooperative pool.
public final class LinkCalls: @unchecked Sendable {
    // @unchecked: every member below is guarded by `lock`.
    private let lock = NSLock()
    private var nextID: UInt64 = 1
    private var waiting: [UInt64: (Result<[UInt8], LinkCallError>) -> Void] = [:]
    private var post: (@Sendable (LinkMessage) -> Void)?
    private var handlers: [Channel: @Sendable ([UInt8]) -> [UInt8]] = [:]

    /// Which part of the agent a call is for.
    public enum Channel: UInt8, Sendable {
        case verify = 1
        case seed = 2
    }

    public init() {}

    /// How answers to the peer's requests on `channel` are made: the request's body in, the
    /// response's out.
    public func answer(_ channel: Channel, with handler: @escaping @Sendable ([UInt8]) -> [UInt8]) {
        lock.withLock { handlers[channel] = handler }
    }

    /// Set by the agent's runner: how a REQUEST or RESPONSE reaches its event loop.
    func attach(_ post: @escaping @Sendable (LinkMessage) -> Void) {
        lock.withLock { self.post = post }
    }

    /// Asks the peer; blocks the calling thread until the answer, the link going down, or
    /// `timeout`. Call from a thread of its own, never from the event loop.
    public func call(_ channel: Channel, _ body: [UInt8], timeout: Duration = .seconds(600)) throws(LinkCallError)
        -> [UInt8]
    {
        let done = DispatchSemaphore(value: 0)
        let box = ResultBox()
        let (id, post) = lock.withLock { () -> (UInt64, (@Sendable (LinkMessage) -> Void)?) in
            let id = nextID
            nextID += 1
            waiting[id] = { result in
                box.result = result
                done.signal()
            }
            return (id, self.post)
        }
        guard let post else {
            finish(id, .failure(.linkDown))
            throw .linkDown
        }
        post(.request(LinkCall(id: id, body: [channel.rawValue] + body)))
        if done.wait(timeout: .now() + timeout.seconds) == .timedOut {
            // The answer may have come meanwhile; either way `finish` has completed the call once.
            finish(id, .failure(.timedOut(timeout)))
            done.wait()
        }
        switch box.result! {
        case .success(let answer): return answer
        case .failure(let error): throw error
        }
    }

    /// The peer answered request `call.id` (an id not waiting — answered late, after a failure —
    /// is dropped).
    func received(response call: LinkCall) {
        finish(call.id, .success(call.body))
    }

    /// The peer asks: answered on a worker thread, the answer posted back to the event loop.
    func received(request call: LinkCall) {
        let channel = call.body.first.flatMap(Channel.init(rawValue:))
        let (handler, post) = lock.withLock { (channel.flatMap { handlers[$0] }, self.post) }
        OwnThread.run("tandem-link-call") {
            let answer = handler?(Array(call.body.dropFirst())) ?? LinkCalls.unhandled
            post?(.response(LinkCall(id: call.id, body: answer)))
        }
    }

    /// A REQUEST could not be sent (the link is not established): its caller fails now.
    func unsent(_ message: LinkMessage) {
        if case .request(let call) = message { finish(call.id, .failure(.linkDown)) }
    }

    /// The connection ended: nothing asked on it will be answered.
    func linkDown() {
        let failed = lock.withLock { () -> [(Result<[UInt8], LinkCallError>) -> Void] in
            defer { waiting.removeAll() }
            return Array(waiting.values)
        }
        for complete in failed { complete(.failure(.linkDown)) }
    }

    private func finish(_ id: UInt64, _ result: Result<[UInt8], LinkCallError>) {
        let complete = lock.withLock { waiting.removeValue(forKey: id) }
        complete?(result)
    }

    static let unhandled = Array(#"{"error":"this agent answers no requests","hint":"Upgrade both sites."}"#.utf8)

    private final class ResultBox: @unchecked Sendable {
        var result: Result<[UInt8], LinkCallError>?
    }
}

/// Why a call to the peer agent got no answer.
public enum LinkCallError: Error, Sendable, Equatable, CustomStringConvertible {
    case linkDown
    case timedOut(Duration)

    public var description: String {
        switch self {
        case .linkDown: "the link to the peer site is down (or went down before it answered)"
        case .timedOut(let timeout): "the peer site did not answer within \(timeout)"
        }
    }
}
