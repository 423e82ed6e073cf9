#include "io/safetensors.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"
#include "core/check.h"

static size_t dtype_size(const char *dtype) {
    if (!strcmp(dtype, "F32") || !strcmp(dtype, "I32") || !strcmp(dtype, "U32")) return 4;
    if (!strcmp(dtype, "F64") || !strcmp(dtype, "I64") || !strcmp(dtype, "U64")) return 8;
    if (!strcmp(dtype, "F16") || !strcmp(dtype, "BF16") || !strcmp(dtype, "I16")) return 2;
    if (!strcmp(dtype, "U8") || !strcmp(dtype, "I8") || !strcmp(dtype, "BOOL")) return 1;
    return 0;
}

int safetensors_write(const char *path, const struct safetensor *tensors, int count,
                      const char *metadata_json) {
    json_t *header = json_object();
    size_t offset = 0;
    if (metadata_json) {
        json_error_t jerr;
        json_t *meta = json_loads(metadata_json, 0, &jerr);
        if (!meta) {
            json_decref(header);
            return catlip_error_set("safetensors metadata is not JSON: %s", jerr.text);
        }
        json_object_set_new(header, "__metadata__", meta);
    }
    for (int i = 0; i < count; i++) {
        const struct safetensor *t = &tensors[i];
        json_t *shape = json_array();
        for (int d = 0; d < t->ndim; d++) json_array_append_new(shape, json_integer(t->shape[d]));
        json_t *entry = json_pack("{s:s, s:o, s:[I, I]}", "dtype", t->dtype, "shape", shape,
                                  "data_offsets", (json_int_t)offset,
                                  (json_int_t)(offset + t->bytes));
        json_object_set_new(header, t->name, entry);
        offset += t->bytes;
    }
    char *text = json_dumps(header, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(header);
    size_t len = strlen(text);
    size_t padded = (len + 7) & ~(size_t)7;  // data starts 8-byte aligned

    struct atomic_file f;
    if (atomic_file_open(&f, path, NULL, 0644) != 0) {
        free(text);
        return -1;
    }
    uint8_t prefix[8];
    for (int i = 0; i < 8; i++) prefix[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    static const char spaces[8] = "        ";
    atomic_file_write(&f, prefix, 8);
    atomic_file_write(&f, text, len);
    atomic_file_write(&f, spaces, padded - len);  // the header padded with spaces
    for (int i = 0; i < count; i++) atomic_file_write(&f, tensors[i].data, tensors[i].bytes);
    free(text);
    return atomic_file_commit(&f);
}

int safetensors_read(const char *path, struct safetensors_file *out) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return catlip_error_set("cannot open %s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (size < 8) {
        fclose(f);
        return catlip_error_set("%s is not a safetensors file (%ld bytes)", path, size);
    }
    out->bytes = xmalloc((size_t)size);
    out->size = (size_t)size;
    if (fread(out->bytes, 1, (size_t)size, f) != (size_t)size) {
        fclose(f);
        safetensors_free(out);
        return catlip_error_set("cannot read %s", path);
    }
    fclose(f);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)out->bytes[i] << (8 * i);
    if (hlen > out->size - 8) {
        safetensors_free(out);
        return catlip_error_set("%s: header length %llu runs past the end of the file", path,
                                (unsigned long long)hlen);
    }
    json_error_t jerr;
    json_t *header = json_loadb((const char *)out->bytes + 8, (size_t)hlen, 0, &jerr);
    if (!header || !json_is_object(header)) {
        json_decref(header);
        safetensors_free(out);
        return catlip_error_set("%s: header is not a JSON object", path);
    }
    const uint8_t *data = out->bytes + 8 + hlen;
    size_t data_size = out->size - 8 - hlen;
    out->tensors = xcalloc(json_object_size(header) + 1, sizeof *out->tensors);
    const char *key;
    json_t *value;
    int rc = 0;
    json_object_foreach(header, key, value) {
        if (!strcmp(key, "__metadata__")) {
            out->metadata_json = json_dumps(value, JSON_COMPACT);
            continue;
        }
        const char *dtype = NULL;
        json_t *shape = NULL, *offsets = NULL;
        if (json_unpack(value, "{s:s, s:o, s:o}", "dtype", &dtype, "shape", &shape,
                        "data_offsets", &offsets) != 0 || !json_is_array(shape) ||
            json_array_size(shape) > 4 || !json_is_array(offsets) || json_array_size(offsets) != 2) {
            rc = catlip_error_set("%s: tensor '%s' has a malformed header entry", path, key);
            break;
        }
        struct safetensor *t = &out->tensors[out->count++];
        t->name = xstrdup(key);
        t->dtype = xstrdup(dtype);
        t->ndim = (int)json_array_size(shape);
        size_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            t->shape[d] = json_integer_value(json_array_get(shape, (size_t)d));
            if (t->shape[d] < 0 || (t->shape[d] > 0 && numel > SIZE_MAX / (size_t)t->shape[d])) rc = -1;
            else numel *= (size_t)t->shape[d];
        }
        json_int_t begin = json_integer_value(json_array_get(offsets, 0));
        json_int_t end = json_integer_value(json_array_get(offsets, 1));
        size_t esize = dtype_size(dtype);
        if (rc || esize == 0 || numel > SIZE_MAX / esize || begin < 0 || end < begin || (size_t)end > data_size ||
            (size_t)(end - begin) != numel * esize) {
            rc = catlip_error_set("%s: tensor '%s' has inconsistent dtype, shape or offsets",
                                  path, key);
            break;
        }
        t->data = data + begin;
        t->bytes = (size_t)(end - begin);
    }
    json_decref(header);
    if (rc) safetensors_free(out);
    return rc;
}

const struct safetensor *safetensors_find(const struct safetensors_file *f, const char *name) {
    for (int i = 0; i < f->count; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

void safetensors_free(struct safetensors_file *f) {
    for (int i = 0; i < f->count; i++) {
        free((char *)f->tensors[i].name);
        free((char *)f->tensors[i].dtype);
    }
    free(f->tensors);
    free(f->bytes);
    free(f->metadata_json);
    memset(f, 0, sizeof *f);
}
