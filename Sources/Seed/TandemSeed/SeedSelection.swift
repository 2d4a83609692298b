import TandemVerify

/// Which tables a seed copies, the same rule for every engine: the tables the pair replicates
/// (`filter`), or exactly those named. Unlike verify, which leaves a table without a key out,
/// a seed refuses it: copying it would leave the DR site without its rows, silently. Every
/// problem is named in one error, before anything is done.
public enum SeedSelection {
    public static func choose(
        _ catalog: [VerifyTable], names: [String]?, filter: VerifyTableFilter?
    ) throws(SeedError) -> [VerifyTable] {
        let replicated = catalog.filter { filter?($0.schema, $0.name) ?? true }
        var chosen: [VerifyTable] = []
        var unknown: [String] = []
        if let names {
            for name in names {
                if let table = replicated.first(where: { $0.description == name }) {
                    chosen.append(table)
                } else {
                    unknown.append(name)
                }
            }
        } else {
            chosen = replicated
        }
        let keyless = chosen.filter { $0.key.isEmpty }.map(\.description)
        guard unknown.isEmpty && keyless.isEmpty else {
            var problems: [String] = []
            if !unknown.isEmpty {
                problems.append("not a replicated table: \(unknown.joined(separator: ", "))")
            }
            if !keyless.isEmpty { problems.append("without a primary key: \(keyless.joined(separator: ", "))") }
            throw SeedError(
                "cannot seed: " + problems.joined(separator: "; "),
                hint:
                    "A seed copies tables in ranges of their primary key: add one, or leave the table out with --tables. Name tables as schema.table, as the catalog spells them."
            )
        }
        return chosen
    }
}
