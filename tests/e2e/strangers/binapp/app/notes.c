#define _GNU_SOURCE /* strcasestr */
/* notes: a tiny HTTP + PostgreSQL server in C, the shape of most compiled services.
 *
 *   notes serve            connect ONCE to $DATABASE_URL (exit 1 on failure), then
 *                          serve HTTP on $PORT (default 8080), one request at a time
 *   notes migrate DIR      run DIR/NNN_*.sql in name order, each in one transaction
 *
 * Routes: GET /health, POST /notes {"text": "..."} -> 201 {"id", "text"},
 * GET /notes/<id> -> 200 or 404. No OpenAPI document. */
#include <arpa/inet.h>
#include <dirent.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int by_name(const struct dirent **a, const struct dirent **b) {
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int migrate(PGconn *db, const char *dir) {
    struct dirent **names;
    int n = scandir(dir, &names, NULL, by_name);
    if (n < 0) { perror(dir); return 1; }
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        size_t len = strlen(name);
        if (len < 5 || strcmp(name + len - 4, ".sql") != 0) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        FILE *f = fopen(path, "r");
        if (!f) { perror(path); return 1; }
        static char sql[1 << 20];
        size_t got = fread(sql, 1, sizeof sql - 1, f);
        fclose(f);
        sql[got] = 0;
        char wrapped[(1 << 20) + 32];
        snprintf(wrapped, sizeof wrapped, "BEGIN;\n%s\n;COMMIT;", sql);
        PGresult *r = PQexec(db, wrapped);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            fprintf(stderr, "migration %s failed: %s", path, PQerrorMessage(db));
            return 1;
        }
        PQclear(r);
        printf("applied %s\n", name);
    }
    return 0;
}

static void answer(int fd, int status, const char *reason, const char *body) {
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     status, reason, strlen(body));
    if (write(fd, head, n) < 0 || write(fd, body, strlen(body)) < 0) perror("write");
}

/* The string value of "text" in a flat JSON object (no escapes), or NULL. */
static char *text_of(char *body) {
    char *key = strstr(body, "\"text\"");
    if (!key) return NULL;
    char *start = strchr(key + 6, '"');
    if (!start) return NULL;
    char *end = strchr(start + 1, '"');
    if (!end) return NULL;
    *end = 0;
    return start + 1;
}

static void handle(PGconn *db, int fd) {
    static char req[65536];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof req - 1 && (n = read(fd, req + got, sizeof req - 1 - got)) > 0) {
        got += n;
        req[got] = 0;
        char *end = strstr(req, "\r\n\r\n");
        if (!end) continue;
        char *cl = strcasestr(req, "Content-Length:");
        size_t want = cl && cl < end ? strtoul(cl + 15, NULL, 10) : 0;
        if (got >= (size_t)(end + 4 - req) + want) break;
    }
    char method[8] = "", path[256] = "";
    sscanf(req, "%7s %255s", method, path);
    char *body = strstr(req, "\r\n\r\n");
    body = body ? body + 4 : req + got;
    char out[4096];
    if (!strcmp(method, "GET") && !strcmp(path, "/health")) {
        PGresult *r = PQexec(db, "SELECT 1");
        int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
        PQclear(r);
        answer(fd, ok ? 200 : 503, ok ? "OK" : "Unavailable", ok ? "{\"ok\": true}" : "{}");
    } else if (!strcmp(method, "POST") && !strcmp(path, "/notes")) {
        char *text = text_of(body);
        if (!text) { answer(fd, 400, "Bad Request", "{\"error\": \"text is required\"}"); return; }
        const char *params[1] = {text};
        PGresult *r = PQexecParams(db, "INSERT INTO note (text) VALUES ($1) RETURNING id",
                                   1, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            fprintf(stderr, "insert failed: %s", PQerrorMessage(db));
            answer(fd, 500, "Internal Server Error", "{}");
        } else {
            snprintf(out, sizeof out, "{\"id\": %s, \"text\": \"%s\"}", PQgetvalue(r, 0, 0), text);
            answer(fd, 201, "Created", out);
        }
        PQclear(r);
    } else if (!strcmp(method, "GET") && !strncmp(path, "/notes/", 7)) {
        const char *params[1] = {path + 7};
        PGresult *r = PQexecParams(db, "SELECT id, text FROM note WHERE id::text = $1",
                                   1, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
            snprintf(out, sizeof out, "{\"id\": %s, \"text\": \"%s\"}",
                     PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
            answer(fd, 200, "OK", out);
        } else {
            answer(fd, 404, "Not Found", "{\"error\": \"no such note\"}");
        }
        PQclear(r);
    } else {
        answer(fd, 404, "Not Found", "{\"error\": \"no such route\"}");
    }
    printf("%s %s\n", method, path);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *url = getenv("DATABASE_URL");
    if (argc < 2 || !url) {
        fprintf(stderr, "usage: DATABASE_URL=... notes serve | notes migrate DIR\n");
        return 2;
    }
    /* Once, at start: no retry (as sqlx on a failed authentication, or many Go services). */
    PGconn *db = PQconnectdb(url);
    if (PQstatus(db) != CONNECTION_OK) {
        fprintf(stderr, "cannot connect to the database: %s", PQerrorMessage(db));
        return 1;
    }
    if (!strcmp(argv[1], "migrate")) return argc > 2 ? migrate(db, argv[2]) : 2;
    int port = getenv("PORT") ? atoi(getenv("PORT")) : 8080;
    int s = socket(AF_INET, SOCK_STREAM, 0), on = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (bind(s, (struct sockaddr *)&addr, sizeof addr) || listen(s, 64)) {
        perror("listen");
        return 1;
    }
    printf("serving on :%d\n", port);
    for (;;) {
        int fd = accept(s, NULL, NULL);
        if (fd < 0) continue;
        handle(db, fd);
        close(fd);
    }
}
