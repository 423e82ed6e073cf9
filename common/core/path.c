#include "core/path.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/check.h"

char *path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = xmalloc(a + b + 2);
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

int path_make_dirs(const char *path) {
    char *buf = xstrdup(path);
    int rc = 0;
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
            rc = catlip_error_set("cannot create directory %s: %s", buf, strerror(errno));
            break;
        }
        *p = saved;
        if (!saved) break;
    }
    free(buf);
    return rc;
}
