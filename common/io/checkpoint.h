// Checkpoint files: RUN_DIR/checkpoints/ckpt-<step, 10 digits>.pb and a `latest` pointer.
//
// A file is a stream of length-delimited Catlip__CheckpointRecord messages (framing.h):
// one header, then tensor chunks, then one footer holding the CRC-32C of every byte before
// the footer's length prefix, the number of records and the number of bytes before it. There
// is no size limit on the file; each record is capped at CKPT_MAX_RECORD_BYTES and each chunk
// carries at most CKPT_CHUNK_BYTES of float data, so neither side holds more than one chunk.
//
// The tensors of a file: each (kind, name) tensor is a run of consecutive chunks with offsets
// 0, n1, n1+n2, ... covering all of its elements exactly once, every chunk repeating the whole
// shape; header.tensor_count says how many tensors follow. Writer and reader both enforce this.
//
// Durability: the writer writes ckpt-<step>.pb.tmp, fsyncs it, renames it to ckpt-<step>.pb,
// fsyncs the directory, then replaces `latest` (a one-line text file holding the file name)
// the same way, then deletes older checkpoints beyond `keep`. A crash at any point leaves
// either the previous state or the new one; a torn file can only be a .tmp, which no reader
// looks at, and a file damaged later on disk fails the footer check.
//
// Writing (coordinator; worker rank 1 produces the tensor records, see ckpt_tensor_records):
//
//     struct ckpt_writer *w;
//     if (ckpt_writer_open(&w, "run/checkpoints", step) < 0) die(catlip_error());
//     Catlip__CheckpointHeader h = CATLIP__CHECKPOINT_HEADER__INIT;
//     h.tensor_count = 2; ...;
//     if (ckpt_writer_header(w, &h) < 0 ||
//         ckpt_writer_tensor(w, CATLIP__TENSOR_CHUNK__KIND__PARAM, "pos_embed", shape, 3, p) < 0 ||
//         ckpt_writer_record(w, bytes_from_mpi, n) < 0) {      // a packed record from rank 1
//         log_error("%s", catlip_error());
//         ckpt_writer_abort(w);                                 // removes the .tmp
//     } else if (ckpt_writer_commit(w, keep) < 0) {             // commit frees w either way
//         log_error("%s", catlip_error());
//     }
//
// Resuming:
//
//     char *path; int64_t step;
//     int found = ckpt_find_latest("run/checkpoints", &path, &step);  // -1 error, 0 fresh start
//     struct ckpt_reader *r;
//     if (found == 1 && ckpt_reader_open(&r, path) == 0) {   // verifies the whole file first
//         const Catlip__CheckpointHeader *h = ckpt_reader_header(r);
//         const Catlip__TensorChunk *c;
//         int rc;
//         while ((rc = ckpt_reader_next(r, &c)) == 1) copy c->data into the tensor c->name;
//         // rc == 0: every chunk delivered and the checksum held again; rc == -1: error
//         ckpt_reader_close(r);
//     }
//     free(path);
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "catlip.pb-c.h"

#define CKPT_FORMAT_VERSION 1
// Float data per tensor chunk: 4 MiB (1 Mi floats).
#define CKPT_CHUNK_BYTES (4u << 20)
// Any record, packed (a chunk plus its name and shape; a header with its YAML text).
#define CKPT_MAX_RECORD_BYTES (CKPT_CHUNK_BYTES + (1u << 20))
// Dimensions of a tensor, at most.
#define CKPT_MAX_DIMS 8
// Largest step a file name can hold (10 digits).
#define CKPT_MAX_STEP 9999999999LL

// ---------------------------------------------------------------------------------------
// writing

struct ckpt_writer;

// Creates checkpoint_dir if it does not exist (its parent must) and opens
// checkpoint_dir/ckpt-<step>.pb.tmp for writing (an existing .tmp, left by a killed run,
// is truncated). Returns 0, or -1 with catlip_error() naming the path and errno text.
int ckpt_writer_open(struct ckpt_writer **out, const char *checkpoint_dir, int64_t step);

// Writes the header record; must come first, exactly once. format_version is set to
// CKPT_FORMAT_VERSION whatever the caller put there. header->tensor_count must be the number
// of tensors that will follow (commit checks it).
int ckpt_writer_header(struct ckpt_writer *w, const Catlip__CheckpointHeader *header);

// Writes one tensor (ndim dims, their product elements of float data) as chunks of at most
// CKPT_CHUNK_BYTES. data is read, never kept.
int ckpt_writer_tensor(struct ckpt_writer *w, Catlip__TensorChunk__Kind kind, const char *name,
                       const int64_t *shape, int ndim, const float *data);

// Appends one packed CheckpointRecord (without length prefix) that holds a tensor chunk, e.g.
// one received from another rank. It is parsed and checked against the chunk rules above
// before it is written; a header or footer record is refused.
int ckpt_writer_record(struct ckpt_writer *w, const void *record, size_t len);

// Finishes the file (footer, fsync, rename, directory fsync), points `latest` at it the same
// way, then deletes the older ckpt-<step>.pb files beyond the newest `keep` (keep <= 0: delete
// none; files with a higher step than this one, from an abandoned run, are left alone) and
// stale .pb.tmp files of lower steps. Frees w in every case. Returns 0 when the checkpoint and
// `latest` are durable (a failure to delete an old file is only logged as a warning), -1 with
// catlip_error() otherwise; when the failure came before the rename the .tmp is removed.
int ckpt_writer_commit(struct ckpt_writer *w, int keep);

// Closes and removes the .tmp file and frees w. For any error before commit.
void ckpt_writer_abort(struct ckpt_writer *w);

// The file this writer commits to (checkpoint_dir/ckpt-<step>.pb).
const char *ckpt_writer_path(const struct ckpt_writer *w);

// Splits one tensor into packed CheckpointRecord chunks (no length prefix), calling
// on_record for each; the bytes are valid only during the call. What a worker uses to send
// its tensors to the coordinator, and what ckpt_writer_tensor writes. Returns 0, -1 with
// catlip_error() on a bad name or shape, or the first non-zero value on_record returned.
typedef int (*ckpt_record_fn)(void *ctx, const uint8_t *record, size_t len);
int ckpt_tensor_records(Catlip__TensorChunk__Kind kind, const char *name, const int64_t *shape,
                        int ndim, const float *data, ckpt_record_fn on_record, void *ctx);

// ---------------------------------------------------------------------------------------
// reading

struct ckpt_reader;

// Opens path and verifies all of it (every record parses and is within the record cap, one
// header first, one footer last, chunk rules, the footer's CRC-32C and counts, nothing after
// the footer), then rewinds to deliver it. Memory: one record at a time. Returns 0, or -1
// with catlip_error() one line naming the file and what is wrong.
int ckpt_reader_open(struct ckpt_reader **out, const char *path);

// One pass instead of two: opens path and checks only its header; ckpt_reader_next then
// applies every check of the verify pass as it goes (chunk rules, and the footer's CRC-32C and
// counts when it returns 0). For a reader that copies what it is given and throws it all away
// on -1 (loading a model for inference), so that a file is read once.
int ckpt_reader_open_streaming(struct ckpt_reader **out, const char *path);

const Catlip__CheckpointHeader *ckpt_reader_header(const struct ckpt_reader *r);
// The footer's counts, known after open.
uint64_t ckpt_reader_record_count(const struct ckpt_reader *r);
uint64_t ckpt_reader_byte_count(const struct ckpt_reader *r);

// Delivers the next tensor chunk: returns 1 with *chunk valid until the next call or close
// (chunk->data holds chunk->data.len / 4 little-endian floats for elements chunk->offset...;
// copy them out with memcpy, the bytes carry no alignment promise),
// 0 at the footer (the file was read a second time and matched its checksum again), or -1
// with catlip_error() (the file changed under us, or a read error).
int ckpt_reader_next(struct ckpt_reader *r, const Catlip__TensorChunk **chunk);
void ckpt_reader_close(struct ckpt_reader *r);

// Verifies a file without delivering it: 0 or -1 with catlip_error().
int ckpt_verify(const char *path);

// Reads only the header record of path, without reading or verifying the rest: for looking
// at a file that ckpt_find_latest or ckpt_verify has just checked (one read of a large file
// instead of two). Returns 0 with *out set (free it with
// catlip__checkpoint_record__free_unpacked(*out, NULL); the header is (*out)->header), or -1
// with catlip_error().
int ckpt_read_header(const char *path, Catlip__CheckpointRecord **out);

// ---------------------------------------------------------------------------------------
// the checkpoint directory (checkpoint_dir.c)

// Makes checkpoint_dir/file_name (a ckpt-<step>.pb already renamed into place) the latest:
// fsyncs the directory, replaces `latest` (temp file, fsync, rename, directory fsync), then
// prunes as described at ckpt_writer_commit. ckpt_writer_commit ends with this. Returns 0, or
// -1 with catlip_error() naming the path and errno text (pruning failures are only warnings).
int ckpt_publish(const char *checkpoint_dir, const char *file_name, int keep);

// For `--resume auto`: tries the file named in checkpoint_dir/latest; when that is missing or
// fails verification, logs a warning naming it and tries every ckpt-<step>.pb from the newest
// step down (a warning for each one skipped). Returns 1 with *path_out (malloc'ed, caller
// frees) and *step_out set to the first file that verifies; 0 when there is none (no
// directory, no files, or none valid: a fresh start); -1 with catlip_error() when the
// directory exists but cannot be read.
int ckpt_find_latest(const char *checkpoint_dir, char **path_out, int64_t *step_out);

// Parses a checkpoint file name "ckpt-<10 digits>.pb" (nothing before or after). Returns 1
// with *step set, 0 for any other name (including the .pb.tmp of a write in progress).
int ckpt_parse_file_name(const char *name, int64_t *step);
