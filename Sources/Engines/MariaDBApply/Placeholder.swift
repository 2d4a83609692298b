// The MariaDB BatchSink lives here (issue 5).
