// catlip shards make: WebDataset shards from a TSV list of local images.
// catlip shards index: build the per-shard indexes ahead of training (threads, and MPI ranks
// when launched with mpirun/srun).
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <mpi.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "core/check.h"
#include "core/log.h"
#include "core/pool.h"
#include "data/jpeg.h"
#include "data/png.h"
#include "data/resample.h"
#include "data/sample_reader.h"
#include "data/shard_index.h"
#include "data/shardlist.h"
#include "data/tar_writer.h"

// ---- shards make ----------------------------------------------------------------------------

static const char make_usage[] =
    "usage: catlip shards make --tsv LIST.tsv -o OUTDIR [options]\n"
    "  --tsv FILE              lines 'image_path<TAB>caption' ('-': standard input); a path is\n"
    "                          taken verbatim up to the tab (spaces are fine), relative paths are\n"
    "                          relative to the TSV's folder; in captions \\t \\n \\r \\\\ are escapes\n"
    "  --cls                   the second column is a class index (written as KEY.cls, not .txt)\n"
    "  -o, --output DIR        where 00000.tar, 00001.tar, ... and 00000_stats.json go\n"
    "  --samples-per-shard N   input lines per shard (default 10000, at most 10000)\n"
    "  --max-side N            longer side cap in pixels; larger images are shrunk (default 512)\n"
    "  --quality Q             JPEG quality of re-encoded images (default 90)\n"
    "  --threads T             decode/encode threads (default: cores of this process)\n"
    "Images may be JPEG or PNG; every image is decoded and re-encoded as JPEG. Keys are\n"
    "img2dataset's: 5-digit shard number + 4-digit line number within the shard; a line that\n"
    "fails leaves a gap and is counted in the shard's _stats.json.\n";

enum make_status {
    MAKE_OK,
    MAKE_FAILED_READ,     // the image file could not be read
    MAKE_FAILED_DECODE,   // not a decodable JPEG or PNG
    MAKE_FAILED_CAPTION,  // empty or not UTF-8
    MAKE_FAILED_CLASS,    // --cls and not an integer >= 0
    MAKE_FAILED_LINE,     // no tab
    MAKE_STATUS_COUNT
};
static const char *const make_status_names[MAKE_STATUS_COUNT] = {
    "success", "failed_to_read", "failed_to_decode", "bad_caption", "bad_class", "bad_line"};

struct make_item {
    char *line;           // owned; split in place
    const char *path;     // into line
    char *caption;        // unescaped (into line)
    size_t caption_len;
    long class_index;
    enum make_status status;
    char error[160];
    unsigned char *jpeg;  // TurboJPEG buffer
    size_t jpeg_size;
    int width, height, original_width, original_height;
};

struct make_job {
    const char *tsv_dir;
    int cls, max_side, quality;
    struct make_item *items;
    long count;
    struct make_thread_state {
        struct jpeg_codec *codec;
        struct image decoded, resized;
        struct resample_scratch scratch;
        unsigned char *file;
        size_t file_capacity;
    } *states;
};

// Unescapes \t \n \r \\ in place. Returns the new length.
static size_t unescape(char *s) {
    char *out = s;
    for (char *p = s; *p; p++) {
        if (*p == '\\' && p[1]) {
            char c = p[1];
            if (c == 't' || c == 'n' || c == 'r' || c == '\\') {
                *out++ = c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r' : '\\';
                p++;
                continue;
            }
        }
        *out++ = *p;
    }
    *out = '\0';
    return (size_t)(out - s);
}

static int read_file(const char *path, unsigned char **buf, size_t *capacity, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return catlip_error_set("cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return catlip_error_set("%s is not a regular file", path);
    }
    size_t n = (size_t)st.st_size;
    if (n + 1 > *capacity) {
        free(*buf);
        *capacity = n + 1;
        *buf = xmalloc(*capacity);
    }
    size_t got = fread(*buf, 1, n, f);
    fclose(f);
    if (got != n) return catlip_error_set("cannot read %s", path);
    *size = n;
    return 0;
}

static void make_one(struct make_job *job, struct make_thread_state *st, struct make_item *it) {
    char *tab = strchr(it->line, '\t');
    if (!tab) {
        it->status = MAKE_FAILED_LINE;
        snprintf(it->error, sizeof it->error, "no tab between image path and caption");
        return;
    }
    *tab = '\0';
    it->path = it->line;
    it->caption = tab + 1;
    it->caption_len = unescape(it->caption);
    if (job->cls) {
        if (parse_class_member(it->caption, it->caption_len, &it->class_index) != 0 || it->class_index < 0) {
            it->status = MAKE_FAILED_CLASS;
            snprintf(it->error, sizeof it->error, "class '%.60s' is not an integer >= 0", it->caption);
            return;
        }
    } else if (!caption_is_usable(it->caption, it->caption_len)) {
        it->status = MAKE_FAILED_CAPTION;
        snprintf(it->error, sizeof it->error, "caption is empty or not UTF-8");
        return;
    }
    char full[PATH_MAX];
    const char *path = it->path;
    if (path[0] != '/' && job->tsv_dir) {
        snprintf(full, sizeof full, "%s/%s", job->tsv_dir, path);
        path = full;
    }
    size_t size = 0;
    if (read_file(path, &st->file, &st->file_capacity, &size) != 0) {
        it->status = MAKE_FAILED_READ;
        snprintf(it->error, sizeof it->error, "%s", catlip_error());
        return;
    }
    int rc = png_is_png(st->file, size) ? png_decode_rgb(st->file, size, &st->decoded)
                                        : jpeg_decode_rgb(st->codec, st->file, size, 1, &st->decoded);
    if (rc != 0) {
        it->status = MAKE_FAILED_DECODE;
        snprintf(it->error, sizeof it->error, "%s", catlip_error());
        return;
    }
    struct image *img = &st->decoded;
    it->original_width = img->width;
    it->original_height = img->height;
    int longer = img->width > img->height ? img->width : img->height;
    if (longer > job->max_side) {
        double s = (double)job->max_side / longer;
        int w = (int)(img->width * s + 0.5), h = (int)(img->height * s + 0.5);
        resample_rgb(&st->resized, img, w < 1 ? 1 : w, h < 1 ? 1 : h, &st->scratch);
        img = &st->resized;
    }
    if (jpeg_encode_rgb(st->codec, img, job->quality, &it->jpeg, &it->jpeg_size) != 0) {
        it->status = MAKE_FAILED_DECODE;
        snprintf(it->error, sizeof it->error, "%s", catlip_error());
        return;
    }
    it->width = img->width;
    it->height = img->height;
    it->status = MAKE_OK;
}

struct make_range {
    struct make_job *job;
    long begin, end;
};

static void make_task(void *ctx, int ith, int nth) {
    struct make_range *r = ctx;
    // Interleaved rows: images differ in size, so a contiguous split would be uneven.
    for (long i = r->begin + ith; i < r->end; i += nth) make_one(r->job, &r->job->states[ith], &r->job->items[i]);
}

static int write_sample_json(struct tar_writer *tw, const char *key, const struct make_item *it, int cls) {
    json_t *o = json_object();
    json_object_set_new(o, "key", json_string(key));
    if (cls) json_object_set_new(o, "class", json_integer(it->class_index));
    else json_object_set_new(o, "caption", json_stringn(it->caption, it->caption_len));
    json_object_set_new(o, "source", json_string(it->path));
    json_object_set_new(o, "status", json_string("success"));
    json_object_set_new(o, "width", json_integer(it->width));
    json_object_set_new(o, "height", json_integer(it->height));
    json_object_set_new(o, "original_width", json_integer(it->original_width));
    json_object_set_new(o, "original_height", json_integer(it->original_height));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!text) return catlip_error_set("cannot encode the JSON of sample %s (caption not UTF-8?)", key);
    char name[64];
    snprintf(name, sizeof name, "%s.json", key);
    int rc = tar_writer_add(tw, name, text, strlen(text));
    free(text);
    return rc;
}

static int write_stats(const char *outdir, int shard, const long counts[MAKE_STATUS_COUNT], long lines,
                       double start, double end, const char *first_error) {
    json_t *o = json_object();
    json_object_set_new(o, "count", json_integer(lines));
    json_object_set_new(o, "successes", json_integer(counts[MAKE_OK]));
    json_object_set_new(o, "failed_to_read", json_integer(counts[MAKE_FAILED_READ]));
    json_object_set_new(o, "failed_to_decode", json_integer(counts[MAKE_FAILED_DECODE]));
    json_object_set_new(o, "failed_caption", json_integer(counts[MAKE_FAILED_CAPTION]));
    json_object_set_new(o, "failed_class", json_integer(counts[MAKE_FAILED_CLASS]));
    json_object_set_new(o, "failed_line", json_integer(counts[MAKE_FAILED_LINE]));
    json_t *status = json_object();
    for (int k = 0; k < MAKE_STATUS_COUNT; k++)
        if (counts[k]) json_object_set_new(status, make_status_names[k], json_integer(counts[k]));
    json_object_set_new(o, "status_dict", status);
    json_object_set_new(o, "start_time", json_real(start));
    json_object_set_new(o, "end_time", json_real(end));
    json_object_set_new(o, "duration", json_real(end - start));
    if (first_error) json_object_set_new(o, "first_error", json_string(first_error));
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%05d_stats.json", outdir, shard);
    int rc = json_dump_file(o, path, JSON_INDENT(2)) == 0 ? 0 : catlip_error_set("cannot write %s", path);
    json_decref(o);
    return rc;
}

static int mkdir_p(const char *dir) {
    char buf[PATH_MAX];
    if (strlen(dir) >= sizeof buf) return catlip_error_set("path too long: %s", dir);
    strcpy(buf, dir);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return catlip_error_set("cannot create %s: %s", buf, strerror(errno));
        *p = saved;
        if (!saved) break;
    }
    return 0;
}

static char **read_lines(const char *tsv, long *count) {
    FILE *f = strcmp(tsv, "-") ? fopen(tsv, "r") : stdin;
    if (!f) catlip_die("cannot open %s: %s", tsv, strerror(errno));
    char **lines = NULL, *line = NULL;
    size_t cap = 0, n = 0, lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (len == 0) continue;
        if (n == lcap) {
            lcap = lcap ? 2 * lcap : 1024;
            lines = xrealloc(lines, lcap * sizeof *lines);
        }
        lines[n++] = xstrdup(line);
    }
    free(line);
    if (f != stdin) fclose(f);
    *count = (long)n;
    return lines;
}

int cmd_shards_make(int argc, char **argv) {
    const char *tsv = NULL, *outdir = NULL;
    long per_shard = 10000;
    int max_side = 512, quality = 90, threads = 0, cls = 0;
    static struct option opts[] = {{"tsv", 1, 0, 't'},        {"output", 1, 0, 'o'},  {"samples-per-shard", 1, 0, 'n'},
                                   {"max-side", 1, 0, 'm'},   {"quality", 1, 0, 'q'}, {"threads", 1, 0, 'j'},
                                   {"cls", 0, 0, 'c'},        {"help", 0, 0, 'h'},    {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 't': tsv = optarg; break;
        case 'o': outdir = optarg; break;
        case 'n': per_shard = atol(optarg); break;
        case 'm': max_side = atoi(optarg); break;
        case 'q': quality = atoi(optarg); break;
        case 'j': threads = atoi(optarg); break;
        case 'c': cls = 1; break;
        case 'h': fputs(make_usage, stdout); return 0;
        default: fputs(make_usage, stderr); return 2;
        }
    }
    if (!tsv || !outdir) {
        fputs(make_usage, stderr);
        catlip_die("shards make needs --tsv and -o");
    }
    if (optind < argc) catlip_die("unexpected argument '%s'", argv[optind]);
    if (per_shard < 1 || per_shard > 10000) catlip_die("--samples-per-shard must be in [1, 10000] (4-digit keys)");
    if (max_side < 8) catlip_die("--max-side must be at least 8");
    if (quality < 1 || quality > 100) catlip_die("--quality must be in [1, 100]");
    if (mkdir_p(outdir) != 0) catlip_die("%s", catlip_error());

    long nlines;
    char **lines = read_lines(tsv, &nlines);
    if (nlines == 0) catlip_die("%s has no lines", tsv);
    char tsv_dir[PATH_MAX] = ".";
    if (strcmp(tsv, "-") != 0) {
        const char *slash = strrchr(tsv, '/');
        if (slash) snprintf(tsv_dir, sizeof tsv_dir, "%.*s", (int)(slash - tsv), tsv);
        if (slash == tsv) strcpy(tsv_dir, "/");
    }
    struct pool *pool = pool_create(threads, 0);
    int nth = pool_size(pool);
    struct make_job job = {.tsv_dir = strcmp(tsv, "-") ? tsv_dir : NULL, .cls = cls, .max_side = max_side,
                           .quality = quality, .count = nlines};
    job.items = xcalloc((size_t)nlines, sizeof *job.items);
    job.states = xcalloc((size_t)nth, sizeof *job.states);
    for (int i = 0; i < nth; i++) job.states[i].codec = jpeg_codec_create();

    long nshards = (nlines + per_shard - 1) / per_shard, done = 0, total_ok = 0, total_failed = 0;
    double t0 = time_now(), last_print = 0;
    int tty = isatty(fileno(stderr));
    enum { CHUNK = 256 };
    for (long shard = 0; shard < nshards; shard++) {
        double shard_start = time_unix();
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%05ld.tar", outdir, shard);
        struct tar_writer tw;
        if (tar_writer_open(&tw, path, (int64_t)time(NULL)) != 0) catlip_die("%s", catlip_error());
        long counts[MAKE_STATUS_COUNT] = {0};
        char first_error[256] = "";
        long begin = shard * per_shard, end = begin + per_shard < nlines ? begin + per_shard : nlines;
        for (long chunk = begin; chunk < end; chunk += CHUNK) {
            long chunk_end = chunk + CHUNK < end ? chunk + CHUNK : end;
            for (long i = chunk; i < chunk_end; i++) job.items[i].line = lines[i];
            struct make_range range = {&job, chunk, chunk_end};
            pool_run(pool, make_task, &range);
            for (long i = chunk; i < chunk_end; i++) {
                struct make_item *it = &job.items[i];
                counts[it->status]++;
                if (it->status != MAKE_OK) {
                    total_failed++;
                    if (!first_error[0]) snprintf(first_error, sizeof first_error, "line %ld: %s", i + 1, it->error);
                    continue;
                }
                char key[48], name[64];
                snprintf(key, sizeof key, "%05ld%04ld", shard, i - begin);
                snprintf(name, sizeof name, "%s.jpg", key);
                int rc = tar_writer_add(&tw, name, it->jpeg, it->jpeg_size);
                if (rc == 0) {
                    char cls_text[32];
                    snprintf(name, sizeof name, "%s.%s", key, cls ? "cls" : "txt");
                    if (cls) {
                        int n = snprintf(cls_text, sizeof cls_text, "%ld", it->class_index);
                        rc = tar_writer_add(&tw, name, cls_text, (size_t)n);
                    } else {
                        rc = tar_writer_add(&tw, name, it->caption, it->caption_len);
                    }
                }
                if (rc == 0) rc = write_sample_json(&tw, key, it, cls);
                if (rc != 0) {
                    tar_writer_abort(&tw);
                    catlip_die("%s", catlip_error());
                }
                jpeg_free_buffer(it->jpeg);
                it->jpeg = NULL;
                total_ok++;
            }
            for (long i = chunk; i < chunk_end; i++) {
                free(lines[i]);
                lines[i] = NULL;
            }
            done = chunk_end;
            double now = time_now();
            if (now - last_print > 0.5 || done == nlines) {
                last_print = now;
                fprintf(stderr, "%sshards make: %ld/%ld images, shard %ld/%ld, %.1f img/s, %ld failed%s",
                        tty ? "\r" : "", done, nlines, shard + 1, nshards, done / (now - t0 + 1e-9), total_failed,
                        tty ? "" : "\n");
            }
        }
        if (tar_writer_close(&tw) != 0) catlip_die("%s", catlip_error());
        if (write_stats(outdir, (int)shard, counts, end - begin, shard_start, time_unix(),
                        first_error[0] ? first_error : NULL) != 0)
            catlip_die("%s", catlip_error());
    }
    if (tty) fputc('\n', stderr);
    printf("wrote %ld shards to %s: %ld samples, %ld failed (see *_stats.json)\n", nshards, outdir, total_ok,
           total_failed);
    for (int i = 0; i < nth; i++) {
        jpeg_codec_destroy(job.states[i].codec);
        image_free(&job.states[i].decoded);
        image_free(&job.states[i].resized);
        resample_scratch_free(&job.states[i].scratch);
        free(job.states[i].file);
    }
    free(job.states);
    free(job.items);
    free(lines);
    pool_destroy(pool);
    return 0;
}

// ---- shards index ---------------------------------------------------------------------------

static const char index_usage[] =
    "usage: catlip shards index PATTERN [--cache-dir DIR] [--threads T] [--force]\n"
    "  PATTERN            shards, e.g. 'data/{00000..00099}.tar' (brace ranges, globs, commas)\n"
    "  --cache-dir DIR    where indexes go when a shard's folder is read-only\n"
    "                     (default $XDG_CACHE_HOME/catlip/index or ~/.cache/catlip/index)\n"
    "  --threads T        shards indexed at once per process (default: cores)\n"
    "  --force            rebuild even when a valid index exists\n"
    "Under mpirun/srun each rank takes every N-th shard. Prints a progress line and a summary:\n"
    "  result: shards=N samples=N built=N failed=N\n";

struct index_run {
    struct shard_list *list;
    const char *cache_dir;
    int force, rank, size;
    _Atomic long next, done, built, failed;
    _Atomic unsigned long long samples;
    _Atomic unsigned long long skips[SHARD_SKIP_COUNT];
    pthread_mutex_t print_lock;
};

static void index_one(struct index_run *run, size_t i) {
    const char *path = run->list->paths[i];
    struct shard_index ix;
    int built = 0, rc;
    if (run->force) {
        char beside[PATH_MAX + 8], cached[PATH_MAX + 64];
        rc = shard_index_build(path, &ix);
        built = rc == 0;
        if (rc == 0) {
            shard_index_path_beside(path, beside, sizeof beside);
            if (shard_index_write(&ix, beside) != 0 &&
                shard_index_path_cached(path, run->cache_dir, cached, sizeof cached) == 0) {
                // Beside failed (read-only folder): shard_index_load's fallback does the cache.
                shard_index_free(&ix);
                unlink(cached);
                rc = shard_index_load(path, run->cache_dir, &ix, &built);
            }
        }
    } else {
        rc = shard_index_load(path, run->cache_dir, &ix, &built);
    }
    if (rc != 0) {
        pthread_mutex_lock(&run->print_lock);
        fprintf(stderr, "%scatlip: error: %s\n", isatty(fileno(stderr)) ? "\n" : "", catlip_error());
        pthread_mutex_unlock(&run->print_lock);
        atomic_fetch_add(&run->failed, 1);
        return;
    }
    atomic_fetch_add(&run->samples, ix.count);
    for (int k = 0; k < SHARD_SKIP_COUNT; k++) atomic_fetch_add(&run->skips[k], ix.skips[k]);
    if (built) atomic_fetch_add(&run->built, 1);
    shard_index_free(&ix);
}

static void index_task(void *ctx, int ith, int nth) {
    struct index_run *run = ctx;
    (void)ith;
    (void)nth;
    size_t mine = (run->list->count + (size_t)run->size - 1 - (size_t)run->rank) / (size_t)run->size;
    for (;;) {
        long k = atomic_fetch_add(&run->next, 1);
        if ((size_t)k >= mine) return;
        index_one(run, (size_t)run->rank + (size_t)k * (size_t)run->size);
        long d = atomic_fetch_add(&run->done, 1) + 1;
        if (run->rank == 0 && (ith == 0 || (size_t)d == mine)) {
            pthread_mutex_lock(&run->print_lock);
            int tty = isatty(fileno(stderr));
            fprintf(stderr, "%sshards index: %ld/%zu shards (rank 0 of %d), %llu samples, %ld built%s", tty ? "\r" : "",
                    d, mine, run->size, (unsigned long long)atomic_load(&run->samples), atomic_load(&run->built),
                    tty ? "" : "\n");
            pthread_mutex_unlock(&run->print_lock);
        }
    }
}

static int launched_by_mpi(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK") || getenv("PMI_SIZE") ||
           (getenv("SLURM_STEP_ID") && getenv("SLURM_NTASKS"));
}

int cmd_shards_index(int argc, char **argv) {
    const char *cache_dir = NULL;
    int threads = 0, force = 0;
    static struct option opts[] = {{"cache-dir", 1, 0, 'C'}, {"threads", 1, 0, 'j'}, {"force", 0, 0, 'f'},
                                   {"help", 0, 0, 'h'},      {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'C': cache_dir = optarg; break;
        case 'j': threads = atoi(optarg); break;
        case 'f': force = 1; break;
        case 'h': fputs(index_usage, stdout); return 0;
        default: fputs(index_usage, stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        fputs(index_usage, stderr);
        catlip_die("shards index needs exactly one PATTERN");
    }
    int mpi = launched_by_mpi(), rank = 0, size = 1;
    if (mpi) {
        MPI_Init(&argc, &argv);
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        MPI_Comm_size(MPI_COMM_WORLD, &size);
        log_set_rank(size > 1 ? rank : -1);
    }
    struct shard_list list;
    if (shardlist_expand(argv[optind], &list) != 0) {
        if (rank == 0) catlip_error_print();
        if (mpi) MPI_Finalize();
        return 2;
    }
    struct index_run run = {.list = &list, .cache_dir = cache_dir, .force = force, .rank = rank, .size = size};
    pthread_mutex_init(&run.print_lock, NULL);
    double t0 = time_now();
    struct pool *pool = pool_create(threads, 0);
    pool_run(pool, index_task, &run);
    pool_destroy(pool);
    long counts[3] = {atomic_load(&run.done), atomic_load(&run.built), atomic_load(&run.failed)};
    unsigned long long samples = atomic_load(&run.samples), skips[SHARD_SKIP_COUNT];
    for (int k = 0; k < SHARD_SKIP_COUNT; k++) skips[k] = atomic_load(&run.skips[k]);
    if (mpi) {
        MPI_Allreduce(MPI_IN_PLACE, counts, 3, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
        MPI_Allreduce(MPI_IN_PLACE, &samples, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
        MPI_Allreduce(MPI_IN_PLACE, skips, SHARD_SKIP_COUNT, MPI_UNSIGNED_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
    }
    if (rank == 0) {
        if (isatty(fileno(stderr))) fprintf(stderr, "\n");
        char skip_text[512] = "";
        size_t w = 0;
        for (int k = 0; k < SHARD_SKIP_COUNT; k++)
            if (skips[k] && w < sizeof skip_text)
                w += (size_t)snprintf(skip_text + w, sizeof skip_text - w, " %s=%llu", shard_skip_names[k], skips[k]);
        printf("indexed %ld shards in %.1f s (%.1f shards/s)%s%s\n", counts[0], time_now() - t0,
               counts[0] / (time_now() - t0 + 1e-9), w ? ", skipped:" : "", skip_text);
        printf("result: shards=%ld samples=%llu built=%ld failed=%ld\n", counts[0], samples, counts[1], counts[2]);
    }
    pthread_mutex_destroy(&run.print_lock);
    shardlist_free(&list);
    if (mpi) MPI_Finalize();
    return counts[2] ? 1 : 0;
}
