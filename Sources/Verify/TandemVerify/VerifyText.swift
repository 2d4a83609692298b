/// `tandem verify` for a person: what was compared, then every difference by table and key.
public enum VerifyText {
    public static func render(_ report: VerifyReport) -> String {
        var lines: [String] = []
        let tables = report.tables.filter { $0.failure == nil || $0.rows > 0 }.count
        lines.append(
            "Compared \(report.rows) rows in \(report.chunks) chunks of \(tables) table\(tables == 1 ? "" : "s").")
        for table in report.tables {
            var head = "  \(table.table): \(table.rows) rows, \(table.chunks) chunks"
            if table.differences.isEmpty, table.unsettled.isEmpty, table.failure == nil { head += ", identical" }
            lines.append(head)
            for difference in table.differences {
                lines.append("    " + describe(difference))
            }
            for key in table.unsettled {
                lines.append("    could not settle key \(key.display): it changed at the primary at every re-check")
            }
            if let failure = table.failure {
                lines.append("    not compared: \(failure.message) (\(failure.hint))")
            }
        }
        lines.append("")
        switch report.exitCode {
        case 0: lines.append("IDENTICAL: both sites hold the same rows.")
        case 1:
            let count = report.differenceCount
            lines.append(
                "DIFFERENT: \(count) difference\(count == 1 ? "" : "s") confirmed after re-checking against the DR site's applied position."
            )
        default: lines.append("INCOMPLETE: some tables or rows could not be compared; see above.")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func describe(_ difference: VerifyReport.Difference) -> String {
        let key = difference.key.map { "key \($0.display)" } ?? ""
        switch difference.kind {
        case .missingAtDR: return "\(key): missing at DR"
        case .extraAtDR: return "\(key): extra at DR (not at the primary)"
        case .different: return "\(key): different in \(difference.columns.joined(separator: ", "))"
        case .schema: return "schema: \(difference.detail ?? "the definitions differ")"
        }
    }
}
