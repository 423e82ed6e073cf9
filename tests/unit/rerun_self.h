// Running this test program again in a fresh process, for settings read once per process (an
// environment variable): the child re-executes /proc/self/exe with one argument.
#pragma once
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "read_to_end.h"

// Runs this program as `name arg` with env_name=env_value in its environment (env_value NULL:
// unset); its stdout into out, its stderr into err (NUL-terminated, read to the end). Returns
// its exit status, -1 if it did not exit, 127 if it could not be started.
static inline int rerun_self(const char *name, const char *arg, const char *env_name,
                             const char *env_value, char *out, size_t out_size, char *err,
                             size_t err_size) {
    int out_pipe[2], err_pipe[2];
    if (pipe(out_pipe) != 0 || pipe(err_pipe) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        dup2(out_pipe[1], 1), dup2(err_pipe[1], 2);
        close(out_pipe[0]), close(err_pipe[0]);
        if (env_value)
            setenv(env_name, env_value, 1);
        else
            unsetenv(env_name);
        execl("/proc/self/exe", name, arg, (char *)NULL);
        _exit(127);
    }
    close(out_pipe[1]), close(err_pipe[1]);
    read_to_end(out_pipe[0], out, out_size);
    read_to_end(err_pipe[0], err, err_size);
    close(out_pipe[0]), close(err_pipe[0]);
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
