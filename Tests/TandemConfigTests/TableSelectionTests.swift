import TandemConfig
import Testing

@Suite struct TableSelectionTests {
    @Test(arguments: [
        ("public.*", "public", "orders", true),
        ("public.*", "public", "", true),
        ("public.*", "sales", "orders", false),
        ("*.*", "any", "thing", true),
        ("public.audit_*", "public", "audit_log", true),
        ("public.audit_*", "public", "audit_", true),
        ("public.audit_*", "public", "audits", false),
        ("public.*_log", "public", "audit_log", true),
        ("public.*_log", "public", "audit_log2", false),
        ("public.a*b*c", "public", "axxbyyc", true),
        ("public.a*b*c", "public", "axxbyy", false),
        ("public.a*a*a*a*b", "public", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false),
        ("sales_*.orders", "sales_eu", "orders", true),
        ("public.Orders", "public", "orders", false),
        ("public.orders", "public", "orders", true),
        ("public.orders", "public", "orders_old", false),
        ("app.tbl-1", "app", "tbl-1", true),
        ("münchen.straße", "münchen", "straße", true),
    ])
    func patternMatching(pattern: String, schema: String, table: String, expected: Bool) throws {
        let p = try #require(TablePattern(pattern))
        #expect(p.matches(schema: schema, table: table) == expected)
    }

    @Test func excludeWinsOverInclude() throws {
        let selection = TableSelection(
            include: [TablePattern("public.*")!, TablePattern("billing.invoices")!],
            exclude: [TablePattern("public.audit_*")!, TablePattern("*.tmp_*")!])
        #expect(selection.includes(schema: "public", table: "orders"))
        #expect(!selection.includes(schema: "public", table: "audit_2024"))
        #expect(!selection.includes(schema: "public", table: "tmp_import"))
        #expect(selection.includes(schema: "billing", table: "invoices"))
        #expect(!selection.includes(schema: "billing", table: "invoice_lines"))
        #expect(!selection.includes(schema: "crm", table: "contacts"))
    }

    @Test func defaultSelectsEverything() {
        #expect(TableSelection.all.includes(schema: "public", table: "x"))
        #expect(TableSelection().include == [TablePattern.everything])
        #expect(TableSelection().exclude.isEmpty)
    }

    @Test(arguments: ["public", "a.b.c", ".t", "s.", "s.t?", "s.[ab]", "s.t t", "\"s\".t", ""])
    func malformedPatternsAreRejected(pattern: String) {
        #expect(TablePattern(pattern) == nil)
    }

    @Test func selectionFromConfig() throws {
        let config = try SiteConfig.parse(ConfigText.valid.text, file: siteFile, environment: ConfigText.environment)
        #expect(config.tables.includes(schema: "public", table: "users"))
        #expect(!config.tables.includes(schema: "public", table: "audit_trail"))
        #expect(config.tables.includes(schema: "billing", table: "invoice_2024"))
        #expect(!config.tables.includes(schema: "billing", table: "payments"))
    }
}

@Suite struct ByteSizeTests {
    @Test(arguments: [
        ("8MiB", 8 << 20), ("8mib", 8 << 20), ("8 MiB", 8 << 20), ("50GiB", 50 << 30), ("1TiB", 1 << 40),
        ("512KiB", 512 << 10), ("500MB", 500_000_000), ("2GB", 2_000_000_000), ("10kB", 10_000),
        ("4K", 4096), ("4G", 4 << 30), ("123", 123), ("123B", 123), (" 7 b ", 7),
    ])
    func parses(text: String, bytes: Int) {
        #expect(ByteSize(parsing: text) == ByteSize(bytes: bytes))
    }

    @Test(arguments: ["", "MiB", "1.5GiB", "1,5GiB", "10 gigs", "-1MiB", "99999999999999999999", "8MiBs"])
    func rejects(text: String) {
        #expect(ByteSize(parsing: text) == nil)
    }

    @Test(arguments: [
        (8 << 20, "8MiB"), (50 << 30, "50GiB"), (500_000_000, "500MB"), (1000, "1kB"), (3072, "3KiB"), (1536, "1536B"),
        (1001, "1001B"), (1 << 40, "1TiB"),
    ])
    func describesExactly(bytes: Int, text: String) {
        #expect(ByteSize(bytes: bytes).description == text)
        #expect(ByteSize(parsing: text) == ByteSize(bytes: bytes))
    }
}
