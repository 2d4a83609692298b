#include <mysql.h>
#include <errmsg.h>
#include <mariadb_rpl.h>
