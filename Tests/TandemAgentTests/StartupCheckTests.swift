import TandemAgent
import Testing

@Suite("start-up check (pure)")
struct StartupCheckTests {
    @Test("setup problems exit, an unreachable database is waited for, nothing found is ready")
    func startupVerdict() {
        let down = DatabaseProblem(.unreachable, "connection refused", hint: "Start it.")
        let password = DatabaseProblem(.setup, "password authentication failed", hint: "Check the password.")
        #expect(StartupCheck.verdict([]) == .ready)
        #expect(StartupCheck.verdict([down]) == .wait(down))
        #expect(StartupCheck.verdict([down, password]) == .exit([password]))
        let error = DatabaseNotReady(use: .capture, problems: [password, password])
        #expect(
            error.description
                == "the database is not ready for capture: \(password.description); \(password.description)")
        #expect(!error.description.contains("\n") && !error.hint.contains("\n"))
    }
}
