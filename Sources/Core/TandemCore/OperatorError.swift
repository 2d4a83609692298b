/// An error that can be shown to an operator as one readable line plus a hint.
///
/// Every error that can reach the command line conforms, so the CLI prints the
/// same shape for a bad config, an unreachable database or a refused peer:
/// what was wrong (`description`) and what to do about it (`hint`).
public protocol OperatorError: Error, CustomStringConvertible {
    /// What to do about it, in one short sentence.
    var hint: String { get }
}

/// How an error that ends a `tandem` command reads on standard error: `tandem: error: …` and,
/// when the error knows what to do about it, `  hint: …` on the next line.
public func operatorReport(_ error: any Error) -> String {
    guard let explained = error as? any OperatorError else { return "tandem: error: \(error)\n" }
    return "tandem: error: \(explained.description)\n  hint: \(explained.hint)\n"
}
