// placeholder for MySQLClient
