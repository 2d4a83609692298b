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
