import PGClient
import PostgreSQLSeed
import TandemCore
import TandemSeed
import TandemTestSupport
import Testing

/// The PostgreSQL seed's schema against two real servers: what the primary's tables need is
/// created at an empty DR server, types and all, and creating it again changes nothing.
@Suite("PostgreSQL seed schema", .serialized)
struct PostgreSQLSeedSchemaTests {
    @Test(
        "the types a table uses come with it (enum, domain, composite, range, arrays, nested, another schema, an extension's); twice is harmless"
    )
    func typesComeWithTheTables() async throws {
        try await withPostgres { primary in
            try await withPostgres { dr in
                try primary.createDatabase("app")
                try dr.createDatabase("app")
                _ = try primary.exec(
                    """
                    CREATE SCHEMA kinds;
                    CREATE TYPE kinds.mood AS ENUM ('sad', 'ok', 'it''s fine');
                    CREATE DOMAIN kinds.cheerful AS kinds.mood DEFAULT 'ok' NOT NULL CHECK (VALUE <> 'sad');
                    CREATE DOMAIN positive AS int CHECK (VALUE > 0);
                    CREATE TYPE kinds.point3 AS (x float8, y float8, label text);
                    CREATE TYPE tagged AS (at kinds.point3, moods kinds.mood[], n positive);
                    CREATE TYPE floatrange AS RANGE (subtype = float8);
                    CREATE TYPE unused AS ENUM ('never');
                    CREATE EXTENSION citext;
                    CREATE TABLE readings (id int PRIMARY KEY, m kinds.mood, c kinds.cheerful, p positive,
                      t tagged, ts tagged[], r floatrange, note citext);
                    """,
                    database: "app")
                _ = try primary.exec(
                    """
                    INSERT INTO readings VALUES (1, 'it''s fine', 'ok', 3, ROW(ROW(1, 2, 'a'), '{sad,ok}', 7),
                      ARRAY[ROW(ROW(0, 0, NULL), '{}', 1)::tagged], '[1.5,2.5)', 'x')
                    """, database: "app")
                let source = try PostgreSQLSeedSource(
                    conninfo: primary.conninfo(database: "app"), password: nil, filter: nil)
                defer { source.close() }
                let tables = try source.tables(["public.readings"])
                let schema = try source.schema(for: tables)
                #expect(!schema.before.contains("unused"), "only the types the table uses")
                let target = try PostgreSQLSeedTarget(conninfo: dr.conninfo(database: "app"))
                defer { target.close() }
                try target.run(script: schema.before)
                try target.run(script: schema.after)
                // The same definitions on both sides, column by column.
                let columns = """
                    SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
                    FROM pg_attribute WHERE attrelid = 'public.readings'::regclass AND attnum > 0
                    """
                let expected = try primary.exec(columns, database: "app").value(row: 0, column: 0)
                let created = try dr.exec(columns, database: "app").value(row: 0, column: 0)
                #expect(expected != nil && created == expected, "\(created ?? "nil") vs \(expected ?? "nil")")
                let domain = """
                    SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE contypid = 'kinds.cheerful'::regtype
                    """
                #expect(
                    try dr.exec(domain, database: "app").value(row: 0, column: 0)
                        == "CHECK ((VALUE <> 'sad'::kinds.mood))")
                let fallback = "SELECT pg_get_expr(typdefaultbin, 0) FROM pg_type WHERE oid = 'kinds.cheerful'::regtype"
                #expect(try dr.exec(fallback, database: "app").value(row: 0, column: 0) == "'ok'::kinds.mood")
                let labels =
                    "SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = 'kinds.mood'::regtype"
                #expect(try dr.exec(labels, database: "app").value(row: 0, column: 0) == "sad,ok,it's fine")
                // The primary's row goes in as the copy would write it.
                _ = try dr.exec(
                    """
                    INSERT INTO readings VALUES (1, 'it''s fine', 'ok', 3, ROW(ROW(1, 2, 'a'), '{sad,ok}', 7),
                      ARRAY[ROW(ROW(0, 0, NULL), '{}', 1)::tagged], '[1.5,2.5)', 'x')
                    """, database: "app")
                let row = "SELECT readings::text FROM readings"
                let copiedRow = try dr.exec(row, database: "app").value(row: 0, column: 0)
                let primaryRow = try primary.exec(row, database: "app").value(row: 0, column: 0)
                #expect(copiedRow != nil && copiedRow == primaryRow)
                // A continued seed runs the types part again: existing types are passed over. (The
                // tables part is run only for tables the DR site lacks.)
                let typesOnly = schema.before.split(separator: "\n").filter { $0.hasPrefix("DO $tandem$") }.joined(
                    separator: "\n")
                #expect(!typesOnly.isEmpty)
                try target.run(script: typesOnly)
            }
        }
    }
}
