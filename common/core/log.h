// Logging: one line per event on stderr, "[time rank] level: message".
#pragma once
#include "core/check.h"

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

// The rank shown in every line (-1: none). Set once after MPI_Init.
void log_set_rank(int rank);
void log_set_level(enum log_level level);
void log_message(enum log_level level, const char *fmt, ...) CATLIP_PRINTF(2, 3);

#define log_debug(...) log_message(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_message(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_message(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_message(LOG_ERROR, __VA_ARGS__)

// Wall-clock seconds (monotonic), for timing.
double time_now(void);
// Unix time in seconds, for records people read.
double time_unix(void);
// Peak resident set size of this process in bytes (getrusage).
size_t peak_rss_bytes(void);
