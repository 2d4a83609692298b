import Foundation

/// Work that blocks (a database call, a wait for a peer's answer) runs on a thread of its own,
/// never on a dispatch queue or the concurrency pool: both have about as many threads as cores,
/// and blocked workers waiting for work queued behind them deadlock a 2-core machine (verify
/// did, until it moved here).
public enum OwnThread {
    public static func run(_ name: String, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread(block: body)
        thread.name = name
        thread.start()
    }
}
