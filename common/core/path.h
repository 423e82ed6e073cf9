// File-system paths: joining, and creating a directory with its parents.
#pragma once

// dir + "/" + name, malloc'ed.
char *path_join(const char *dir, const char *name);
// mkdir -p: every missing component of path (0755). Returns 0, or -1 with catlip_error()
// naming the directory that could not be made.
int path_make_dirs(const char *path);
