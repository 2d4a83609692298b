// The PostgreSQL BatchSink lives here (issue 4).
