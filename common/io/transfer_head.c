#include "io/transfer_head.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "io/safetensors.h"

// Sets meta[key] to the compact JSON text of value (safetensors metadata values are strings).
static void set_json_text(json_t *meta, const char *key, json_t *value) {
    char *text = json_dumps(value, JSON_COMPACT);
    json_object_set_new(meta, key, json_string(text));
    free(text);
    json_decref(value);
}

int transfer_head_write(const char *path, const struct transfer_class *classes, int K, int C,
                        const float *weight, const float *bias, uint64_t vocab_hash,
                        const char *checkpoint) {
    json_t *meta = json_object(), *names = json_array(), *synsets = json_array(),
           *how = json_array();
    for (int k = 0; k < K; k++) {
        json_array_append_new(names, json_string(classes[k].name));
        json_t *ids = json_array();
        for (int i = 0; i < classes[k].nsynsets; i++)
            json_array_append_new(ids, json_string(classes[k].synsets[i].id));
        json_array_append_new(synsets, ids);
        json_array_append_new(how, json_string(transfer_how_name(classes[k].how)));
    }
    json_object_set_new(meta, "format", json_string("catlip-transfer-head"));
    set_json_text(meta, "classes", names);
    set_json_text(meta, "synsets", synsets);
    set_json_text(meta, "how", how);
    char hash[32];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)vocab_hash);
    json_object_set_new(meta, "vocab_hash", json_string(hash));
    json_object_set_new(meta, "checkpoint", json_string(checkpoint ? checkpoint : ""));
    char *meta_text = json_dumps(meta, JSON_COMPACT);
    json_decref(meta);
    struct safetensor t[2] = {
        {.name = "head.weight",
         .dtype = "F32",
         .ndim = 2,
         .shape = {K, C},
         .data = weight,
         .bytes = (size_t)K * C * sizeof(float)},
        {.name = "head.bias",
         .dtype = "F32",
         .ndim = 1,
         .shape = {K},
         .data = bias,
         .bytes = (size_t)K * sizeof(float)},
    };
    int rc = safetensors_write(path, t, 2, meta_text);
    free(meta_text);
    return rc;
}

int transfer_head_load(const char *path, int *num_classes, int dim, float **weight, float **bias,
                       char ***names) {
    struct safetensors_file f;
    if (safetensors_read(path, &f) != 0) return -1;
    const struct safetensor *w = safetensors_find(&f, "head.weight"),
                            *b = safetensors_find(&f, "head.bias");
    int rc = 0;
    json_t *meta = f.metadata_json ? json_loads(f.metadata_json, 0, NULL) : NULL;
    const char *format = json_string_value(json_object_get(meta, "format"));
    if (!w || !b || !format || strcmp(format, "catlip-transfer-head"))
        rc = catlip_error_set("%s: not a transfer head (write one with catlip transfer)", path);
    else if (strcmp(w->dtype, "F32") || strcmp(b->dtype, "F32") || w->ndim != 2 || b->ndim != 1 ||
             w->shape[0] != b->shape[0] || w->shape[0] < 1)
        rc = catlip_error_set("%s: head.weight and head.bias must be F32 (K, C) and (K)", path);
    else if (w->shape[1] != dim)
        rc = catlip_error_set(
            "%s: head width %lld differs from the model's %d (another checkpoint's head?)", path,
            (long long)w->shape[1], dim);
    json_t *classes = NULL;
    if (rc == 0 && names) {
        classes = json_loads(json_string_value(json_object_get(meta, "classes"))
                                 ? json_string_value(json_object_get(meta, "classes"))
                                 : "",
                             0, NULL);
        if (!json_is_array(classes) || (long long)json_array_size(classes) != w->shape[0])
            rc = catlip_error_set("%s: metadata 'classes' must list %lld names", path,
                                  (long long)w->shape[0]);
    }
    if (rc == 0) {
        int K = (int)w->shape[0];
        *num_classes = K;
        *weight = xmalloc(w->bytes);
        memcpy(*weight, w->data, w->bytes);
        *bias = xmalloc(b->bytes);
        memcpy(*bias, b->data, b->bytes);
        if (names) {
            *names = xmalloc((size_t)K * sizeof **names);
            for (int k = 0; k < K; k++) {
                const char *s = json_string_value(json_array_get(classes, (size_t)k));
                (*names)[k] = xstrdup(s ? s : "?");
            }
        }
    }
    json_decref(classes);
    json_decref(meta);
    safetensors_free(&f);
    return rc == 0 ? 0 : -1;
}
