// The PostgreSQL BatchSource lives here (issue 4).
