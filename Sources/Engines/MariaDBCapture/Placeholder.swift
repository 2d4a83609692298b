// The MariaDB BatchSource lives here (issue 5).
