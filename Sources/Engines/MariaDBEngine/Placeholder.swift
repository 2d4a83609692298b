// The MariaDB binlog decoder lives here (issue 5).
