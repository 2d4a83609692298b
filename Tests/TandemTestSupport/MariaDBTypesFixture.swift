/// A MariaDB table with a column of every type the pair carries, and rows holding each type's
/// edge values (and a row of NULLs): what the pair tests replicate and the verify tests compare.
public enum MariaDBTypesFixture {
    public static let createTable = """
        CREATE TABLE types (
          id INT PRIMARY KEY, ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED, mi MEDIUMINT,
          miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED, d DECIMAL(65,30), f FLOAT,
          db DOUBLE, b BIT(64), dt DATE, tm TIME(6), dtm DATETIME(6), ts TIMESTAMP(6) NULL, y YEAR, c CHAR(10),
          vc VARCHAR(100), bn BINARY(4), vb VARBINARY(20), tb TINYBLOB, bl BLOB, mb MEDIUMBLOB, lb LONGBLOB, tt TINYTEXT,
          tx TEXT, mt MEDIUMTEXT, lt LONGTEXT, e ENUM('a','b','c'), st SET('x','y','z'), j JSON
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
        """

    public static let insertRows = """
        INSERT INTO types VALUES
         (1, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295, -9223372036854775808,
          18446744073709551615, -12345678901234567890123456789012345.123456789012345678901234567890, 3.5, -2.25e300,
          b'1010101010101010101010101010101010101010101010101010101010101010', '2024-02-29', '-838:59:59.000000',
          '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.499999', 2155, 'abc', 'Grüße 🎉 ok', x'00ff10ee',
          x'0001', x'ff', repeat(x'ab', 1000), repeat(x'cd', 70000), repeat(x'ef', 300000), 'tiny', repeat('t', 5000),
          repeat('m', 70000), repeat('🎉', 100000), 'b', 'x,z', '{"a": [1, 2.5, null], "b": "ü"}'),
         (2, 127, 0, 32767, 0, 8388607, 0, 2147483647, 0, 9223372036854775807, 0, 0.000000000000000000000000000001,
          -0.0, 0, b'0', '1000-01-01', '-00:00:01.500000', '1000-01-01 00:00:00', '1970-01-01 00:00:01', 1901, '',
          '', x'00000000', x'', x'', x'', x'', x'', '', '', '', '', 'a', '', '[]'),
         (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
          NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
        """
}

extension MariaDBTypesFixture {
    /// Generated rows with nearly every column set (ids `first...last`, none of the edge rows'
    /// ids), so a bulk copy carries each type many times; every thousandth row holds large
    /// BLOB and text values.
    public static func generatedRows(_ first: Int, _ last: Int) -> String {
        """
        INSERT INTO types SELECT seq, seq % 128, seq % 256, seq % 32768, seq % 65536, seq % 8388608, seq % 16777216,
          seq, seq, seq * 1000003, seq * 1000003, seq / 7, seq / 3, seq / 7e0, seq,
          '2000-01-01' + INTERVAL (seq % 10000) DAY, SEC_TO_TIME(seq % 3000000), '2000-01-01' + INTERVAL seq MINUTE,
          FROM_UNIXTIME(1000000000 + seq), 1901 + seq % 255, LEFT(MD5(seq), 10), CONCAT('vc ñ ', seq),
          UNHEX(LEFT(MD5(seq), 8)), UNHEX(MD5(seq)), UNHEX(MD5(seq)), UNHEX(REPEAT(MD5(seq), 10)),
          IF(seq % 1000 = 0, REPEAT(UNHEX(MD5(seq)), 5000), NULL), NULL, CONCAT('t', seq), REPEAT('x', seq % 100),
          NULL, IF(seq % 1000 = 0, REPEAT('🎉', 20000), NULL), ELT(1 + seq % 3, 'a', 'b', 'c'),
          ELT(1 + seq % 4, '', 'x', 'x,y', 'x,y,z'), JSON_OBJECT('n', seq)
        FROM seq_\(first)_to_\(last)
        """
    }
}
