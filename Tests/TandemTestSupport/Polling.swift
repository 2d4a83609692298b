import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A test waited for something that did not happen in time.
public struct TimedOut: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

/// The test suite's one polling helper: evaluates `condition` until it holds or `seconds`
/// have passed, and returns whether it held (evaluated once more at the deadline, so a slow
/// last poll is not lost). For conditions on real servers and processes, which settle at
/// their own pace: the limit bounds a hung test and never asserts speed.
///
/// Never use it to show that something did *not* happen: wait for a later event instead
/// and then assert exactly what arrived before it.
public func eventually(
    _ seconds: Double, pollMicroseconds: UInt32 = 20_000, _ condition: () throws -> Bool
) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try condition() { return true }
        usleep(pollMicroseconds)
    }
    return try condition()
}

/// `eventually` for async code: sleeps with `Task.sleep` between polls instead of blocking
/// the thread.
public func eventuallyAsync(
    _ seconds: Double, pollMilliseconds: Int = 20, _ condition: () async throws -> Bool
) async throws -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(pollMilliseconds))
    }
    return try await condition()
}

/// `eventually`, but a timeout throws `TimedOut` naming `what`.
public func waitFor(
    _ what: @autoclosure () -> String, seconds: Double, pollMicroseconds: UInt32 = 20_000,
    _ condition: () throws -> Bool
) throws {
    guard try eventually(seconds, pollMicroseconds: pollMicroseconds, condition) else {
        throw TimedOut(description: "timed out after \(seconds) s waiting for \(what())")
    }
}
