// placeholder for PGClient
