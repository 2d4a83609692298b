import TandemCore

/// A `LinkSession.Configuration` that cannot work.
public struct LinkConfigurationError: Error, Hashable, Sendable, OperatorError {
    public var problem: String
    public var hint: String

    public init(_ problem: String, hint: String) {
        self.problem = problem
        self.hint = hint
    }

    public var description: String { "invalid link configuration: \(problem)" }
}
