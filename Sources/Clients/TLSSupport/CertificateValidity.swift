import COpenSSL
import CTandemShims
import Foundation

/// When a certificate is valid.
public struct CertificateValidity: Sendable, Equatable {
    public var notBefore: Date
    public var notAfter: Date

    public init(notBefore: Date, notAfter: Date) {
        self.notBefore = notBefore
        self.notAfter = notAfter
    }

    /// How far notBefore is set back from "now": the two sites' clocks are
    /// never exactly equal, and a certificate that the other site considers
    /// not yet valid for its first minutes would fail a fresh installation.
    public static let clockSkewAllowance: TimeInterval = 3600

    /// Valid from a little before `now` for `days` days.
    public static func days(_ days: Int, from now: Date = Date()) -> CertificateValidity {
        CertificateValidity(
            notBefore: now.addingTimeInterval(-clockSkewAllowance),
            notAfter: now.addingTimeInterval(TimeInterval(days) * 86_400))
    }
}
