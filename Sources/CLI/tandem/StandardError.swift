import ArgumentParser
import TandemCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

enum FileHandleStandardError {
    static func write(_ string: String) {
        var text = string
        text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(2, bytes.baseAddress! + offset, bytes.count - offset)
                if written <= 0 { return }
                offset += written
            }
        }
    }
}

/// Prints an error as the operator sees it and turns it into an exit code.
func report(_ error: any Error) -> ExitCode {
    var stderr = StandardError()
    if let explained = error as? any OperatorError {
        print("tandem: error: \(explained.description)", to: &stderr)
        print("  hint: \(explained.hint)", to: &stderr)
    } else {
        print("tandem: error: \(error)", to: &stderr)
    }
    return ExitCode(1)
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        FileHandleStandardError.write(string)
    }
}
