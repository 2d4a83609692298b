/// A credential that must never reach a log line, a status page or a crash
/// report.
///
/// Every way Swift turns a value into text — `description`, string
/// interpolation, `debugDescription` / `String(reflecting:)`, `dump` and
/// `Mirror` — yields `********`, so a `SiteConfig` can be logged or dumped
/// whole without review. The value is reachable only through `reveal()`,
/// which makes every place that handles the clear text easy to find with grep.
///
/// `Secret` is deliberately neither `Codable` nor `Hashable`: nothing should
/// serialise it, and it never needs to be a dictionary key.
public struct Secret: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    /// What every textual representation shows instead of the value.
    public static let mask = "********"

    private let value: String

    public init(_ value: String) {
        self.value = value
    }

    /// The clear text. Call it only at the point of use (handing the password
    /// to the database client), never to build a message.
    public func reveal() -> String { value }

    public var description: String { Secret.mask }
    public var debugDescription: String { Secret.mask }

    /// No children, so `dump` and reflection-based printers stop here and fall
    /// back to `debugDescription`.
    public var customMirror: Mirror {
        Mirror(self, children: EmptyCollection<Mirror.Child>(), displayStyle: nil)
    }
}
