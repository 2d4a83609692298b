/// A PostgreSQL table with a column of every built-in type the pair carries (and an enum and a
/// domain), rows holding each type's edge values, a row of NULLs and a 1.2 MB TOASTed text: what
/// the pair test replicates and the seed test copies.
public enum PostgresTypesFixture {
    public static let createTable = """
        CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
        CREATE DOMAIN positive AS int CHECK (VALUE > 0);
        CREATE TABLE types (
          id int PRIMARY KEY, b bool, i2 int2, i4 int4, i8 int8, n numeric, n2 numeric(12,3), r float4, d float8,
          c char(5), vc varchar(20), t text, raw bytea, j json, jb jsonb, u uuid, dt date, tm time(6), ttz timetz,
          ts timestamp(6), tstz timestamptz, iv interval, ints int[], texts text[], m mood, p positive, addr inet,
          bits bit varying(16), big text)
        """

    public static let insertRows = """
        INSERT INTO types VALUES
         (1, true, -32768, -2147483648, -9223372036854775808, 1234567890123456789012345678901234567890.0123456789,
          -123456789.125, 'NaN', '-Infinity', 'ab', 'Grüße 🎉', E'line\\nbreak \\\\ ''quoted''', '\\x00ff10',
          '{"a": [1, 2.50, null]}', '{"z": 1, "a": {"b": "c"}}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
          '2024-02-29', '23:59:59.999999', '12:00:00+05:30', '1999-12-31 23:59:59.123456',
          '2024-06-30 12:00:00.5+02', '1 year 2 mons 3 days 04:05:06.789', '{1,NULL,3}', '{"a b","c,d",NULL}',
          'happy', 7, '192.168.0.1/24', B'1011', repeat('toast!', 200000)),
         (2, false, 32767, 2147483647, 9223372036854775807, -0.000000000000000000000000000000000000001, 0, 3.4028235e38,
          -0.0, NULL, '', '', '\\x', 'null', '[]', '00000000-0000-0000-0000-000000000000', '4713-01-01 BC',
          '00:00:00', '00:00:00-12', 'infinity', '-infinity', '-178000000 years', '{}', '{}', 'sad', 1, '::1',
          B'', NULL),
         (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
          NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
        """

    /// Generated rows with every column set (ids `first...last`, none of the edge rows' ids), so a
    /// bulk copy carries each type many times; every thousandth row holds a TOASTed text.
    public static func generatedRows(_ first: Int, _ last: Int) -> String {
        """
        INSERT INTO types SELECT g, g % 2 = 0, (g % 30000)::int2, g, g::int8 * 1000003, g::numeric / 7,
          (g % 100000)::numeric / 8, g / 3.0::float4, g / 7.0::float8, left(md5(g::text), 5), 'vc ' || g,
          'text ñ ' || g, decode(md5(g::text), 'hex'), json_build_object('g', g), jsonb_build_object('g', g, 'a',
          jsonb_build_array(g, 'x')), md5(g::text)::uuid, date '2000-01-01' + g % 10000,
          time '00:00' + g * interval '1 second', timetz '12:00:00+02', timestamp '2000-01-01' + g * interval '1 minute',
          timestamptz '2000-01-01 00:00:00+00' + g * interval '1 second', g * interval '1 minute', ARRAY[g, NULL, -g],
          ARRAY['a' || g, NULL], (ARRAY['sad', 'ok', 'happy'])[1 + g % 3]::mood, 1 + g % 1000,
          ('10.0.' || (g % 256) || '.' || (g / 256 % 256))::inet, (g % 65536)::bit(16)::varbit,
          CASE WHEN g % 1000 = 0 THEN repeat(md5(g::text), 300) END
        FROM generate_series(\(first), \(last)) AS g
        """
    }
}
