/// An error that can be shown to an operator as one readable line plus a hint.
///
/// Every error that can reach the command line conforms, so the CLI prints the
/// same shape for a bad config, an unreachable database or a refused peer:
/// what was wrong (`description`) and what to do about it (`hint`).
public protocol OperatorError: Error, CustomStringConvertible {
    /// What to do about it, in one short sentence.
    var hint: String { get }
}
