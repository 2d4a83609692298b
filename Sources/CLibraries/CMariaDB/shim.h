#include <mysql.h>
#include <errmsg.h>
#include <mariadb_rpl.h>
#include <ma_pvio.h>

/* Bytes Connector/C has read from the socket but not handed out yet (its read-ahead
   cache). With the socket's own readiness this tells whether the next read would block:
   the capture waits for a batch's events to gather instead of waking once per event. */
static inline size_t tandem_mysql_read_ahead_bytes(MYSQL *mysql) {
    MARIADB_PVIO *pvio = mysql ? mysql->net.pvio : 0;
    if (!pvio || !pvio->cache || !pvio->cache_pos) return 0;
    unsigned char *end = pvio->cache + pvio->cache_size;
    return end > pvio->cache_pos ? (size_t)(end - pvio->cache_pos) : 0;
}
