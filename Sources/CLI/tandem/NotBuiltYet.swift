import ArgumentParser
import Logging
import TandemCore

/// Raised by commands that exist in the tree but are not built yet.
struct NotBuiltYet: OperatorError {
    var command: String
    var purpose: String

    var description: String { "`tandem \(command)` is not built yet: \(purpose)" }
    var hint: String { "see README.md, \"What works today\", for what this version can do" }
}
