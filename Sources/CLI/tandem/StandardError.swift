import ArgumentParser
import TandemCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Prints an error as the operator sees it (`operatorReport`) and turns it into an exit code.
func report(_ error: any Error) -> ExitCode {
    var stderr = StandardError()
    print(operatorReport(error), terminator: "", to: &stderr)
    return ExitCode(1)
}

/// Standard error, unbuffered: each write reaches the terminal or the journal whole.
struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
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
