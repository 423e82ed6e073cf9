#include "nn/text_tower.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/check.h"
#include "core/rng.h"
#include "nn/matmul.h"

struct text_preset {
    const char *name;
    int width, depth, heads;
};

static const struct text_preset presets[] = {
    {"text_base", 512, 12, 8},  // CLIP's smallest text tower (RN50, ViT-B/32, ViT-B/16)
    {"text_tiny", 64, 2, 4},    // tests
};

int text_config_make(struct text_config *out, const char *name, int vocab_size, int context,
                     int eot_token, int width, int depth, int heads, int embed_dim) {
    const struct text_preset *p = NULL;
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (!strcmp(presets[i].name, name)) p = &presets[i];
    if (!p) return catlip_error_set("text tower '%s' is not a preset (text_base, text_tiny)", name);
    memset(out, 0, sizeof *out);
    out->vocab_size = vocab_size;
    out->context = context;
    out->eot_token = eot_token;
    out->width = width > 0 ? width : p->width;
    out->depth = depth > 0 ? depth : p->depth;
    out->heads = heads > 0 ? heads : p->heads;
    out->embed_dim = embed_dim > 0 ? embed_dim : out->width;
    out->mlp_hidden = 4 * out->width;
    if (out->width % out->heads != 0)
        return catlip_error_set("text width %d is not divisible by %d heads", out->width,
                                out->heads);
    if (out->depth < 1)
        return catlip_error_set("text tower depth %d: at least one block", out->depth);
    if (context < 2)
        return catlip_error_set("text context length %d is too short (SOT and EOT need 2)",
                                context);
    if (vocab_size < 1 || eot_token < 0 || eot_token >= vocab_size)
        return catlip_error_set("text vocabulary of %d tokens cannot hold end-of-text id %d",
                                vocab_size, eot_token);
    out->head_dim = out->width / out->heads;
    return 0;
}

static struct transformer_shape text_shape(const struct text_config *c) {
    return (struct transformer_shape){c->context, c->width, c->heads, c->head_dim, c->mlp_hidden,
                                      1};
}

// ---------------------------------------------------------------------------------------
// parameters

static size_t add_tensor(struct text_layout *l, int *cap, const char *name, bool decay, int ndim,
                         int64_t d0, int64_t d1) {
    return tensor_table_add(&l->tensors, &l->ntensors, cap, &l->total, name, decay, ndim, d0, d1,
                            0, 0);
}

void text_layout_init(struct text_layout *l, const struct text_config *c) {
    memset(l, 0, sizeof *l);
    l->config = *c;
    int cap = 0;
    const int64_t C = c->width;
    l->token_embedding = add_tensor(l, &cap, "token_embedding.weight", true, 2, c->vocab_size, C);
    l->positional_embedding = add_tensor(l, &cap, "positional_embedding", false, 2, c->context, C);
    l->blocks = xcalloc((size_t)c->depth, sizeof *l->blocks);
    static const char *const names[12] = {
        "ln_1.weight", "ln_1.bias", "attn.in_proj_weight", "attn.in_proj_bias",
        "attn.out_proj.weight", "attn.out_proj.bias", "ln_2.weight", "ln_2.bias",
        "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias"};
    for (int i = 0; i < c->depth; i++) {
        char prefix[48];
        snprintf(prefix, sizeof prefix, "transformer.resblocks.%d.", i);
        tensor_table_add_block(&l->tensors, &l->ntensors, &cap, &l->total, prefix, names, C,
                               c->mlp_hidden, &l->blocks[i]);
    }
    l->ln_final_w = add_tensor(l, &cap, "ln_final.weight", false, 1, C, 0);
    l->ln_final_b = add_tensor(l, &cap, "ln_final.bias", false, 1, C, 0);
    // (E, C) as nn.Linear(C, E, bias=False); OpenAI's CLIP stores its transpose, x @ P.
    l->projection = add_tensor(l, &cap, "text_projection.weight", true, 2, c->embed_dim, C);
}

void text_layout_free(struct text_layout *l) {
    free(l->tensors);
    free(l->blocks);
    memset(l, 0, sizeof *l);
}

static int has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

void text_init_params(const struct text_layout *l, float *params, uint64_t seed) {
    const struct text_config *c = &l->config;
    const double attn_std = 1.0 / sqrt(c->width);
    const double proj_std = attn_std / sqrt(2.0 * c->depth);
    const double fc_std = 1.0 / sqrt(2.0 * c->width);
    memset(params, 0, l->total * sizeof *params);
    for (int i = 0; i < l->ntensors; i++) {
        const struct tensor_info *t = &l->tensors[i];
        float *p = params + t->offset;
        double std;
        if (has_suffix(t->name, "bias")) continue;  // zeros
        if (strstr(t->name, "ln_")) {               // LayerNorm weight: ones
            for (size_t j = 0; j < t->numel; j++) p[j] = 1.0f;
            continue;
        }
        if (!strcmp(t->name, "token_embedding.weight"))
            std = 0.02;
        else if (!strcmp(t->name, "positional_embedding"))
            std = 0.01;
        else if (has_suffix(t->name, "in_proj_weight"))
            std = attn_std;
        else if (has_suffix(t->name, "out_proj.weight") || has_suffix(t->name, "c_proj.weight"))
            std = proj_std;
        else if (has_suffix(t->name, "c_fc.weight"))
            std = fc_std;
        else
            std = attn_std;  // text_projection.weight
        struct rng r;
        rng_init(&r, rng_key(seed, 0x7e47, (uint64_t)i, 0));
        for (size_t j = 0; j < t->numel; j++) p[j] = (float)(std * rng_normal(&r));
    }
}

// ---------------------------------------------------------------------------------------
// activations

static void acts_carve(struct text_acts *a, const struct text_config *c, int B, int nthreads,
                       int bf16) {
    memset(a, 0, sizeof *a);
    a->max_batch = B;
    a->config = *c;
    a->nthreads = nthreads;
    a->bf16 = bf16;
    const struct transformer_shape s = text_shape(c);
    const size_t C = (size_t)c->width, BT = (size_t)B * (size_t)c->context;
    a->blocks = xcalloc((size_t)c->depth, sizeof *a->blocks);
    a->ids = xcalloc(BT, sizeof *a->ids);
    a->eot = xcalloc((size_t)B, sizeof *a->eot);
    struct carver cv = {0};
    for (int pass = 0; pass < 2; pass++) {
        if (pass) carver_allocate(&cv, &a->memory, &a->floats);
        a->x0 = carve_floats(&cv, BT * C);
        for (int l = 0; l < c->depth; l++)
            transformer_block_acts_carve(&cv, &a->blocks[l], &s, B, bf16);
        a->pooled = carve_floats(&cv, (size_t)B * C);
        a->lnf = carve_floats(&cv, (size_t)B * C);
        a->lnf_mean = carve_floats(&cv, (size_t)B);
        a->lnf_rstd = carve_floats(&cv, (size_t)B);
        a->features = carve_floats(&cv, (size_t)B * (size_t)c->embed_dim);
        transformer_scratch_carve(&cv, &a->scratch, &s, B, nthreads, bf16);
        a->dpooled = carve_floats(&cv, (size_t)B * C);
    }
    for (int l = 0; bf16 && l < c->depth; l++)
        transformer_block_acts_share_scratch(&a->blocks[l], &a->scratch);
}

void text_acts_create(struct text_acts *a, const struct text_config *c, int B, int nthreads) {
    acts_carve(a, c, B, nthreads, 0);
}

void text_acts_enable_bf16(struct text_acts *a, size_t params) {
    if (!a->bf16) {
        struct text_config c = a->config;
        int B = a->max_batch, nthreads = a->nthreads;
        text_acts_free(a);
        acts_carve(a, &c, B, nthreads, 1);
    }
    if (a->weights_bf16 == NULL) a->weights_bf16 = xaligned_alloc(params * sizeof(uint16_t));
}

void text_acts_free(struct text_acts *a) {
    free(a->memory);
    free(a->blocks);
    free(a->ids);
    free(a->eot);
    free(a->weights_bf16);
    memset(a, 0, sizeof *a);
}

// ---------------------------------------------------------------------------------------
// embeddings

struct embed_task {
    const struct text_config *c;
    const int32_t *ids;
    const float *token_embedding, *positional_embedding;
    float *x0;
    int B;
    // backward
    const float *dres;
    float *dtoken, *dpos;
};

// x0[b, t] = token_embedding[ids[b, t]] + positional_embedding[t]
static void embed_forward_worker(void *arg, int ith, int nth) {
    struct embed_task *t = arg;
    const long C = t->c->width, T = t->c->context;
    long b0, e0;
    pool_split((long)t->B * T, ith, nth, &b0, &e0);
    for (long i = b0; i < e0; i++) {
        const float *tok = t->token_embedding + (long)t->ids[i] * C;
        const float *pos = t->positional_embedding + (i % T) * C;
        float *x = t->x0 + i * C;
        for (long c = 0; c < C; c++) x[c] = tok[c] + pos[c];
    }
}

// dpos[t] += sum_b dres[b, t] (split over (t, c)); dtoken[v] += sum of dres at the positions
// holding id v (split over ids: every thread scans all positions in order for its own ids, so
// each row sums in one fixed order whatever the thread count).
static void embed_backward_worker(void *arg, int ith, int nth) {
    struct embed_task *t = arg;
    const long C = t->c->width, T = t->c->context, BT = (long)t->B * T;
    long b0, e0;
    pool_split(T * C, ith, nth, &b0, &e0);
    for (long i = b0; i < e0; i++) {
        float s = 0.0f;
        for (long b = 0; b < t->B; b++) s += t->dres[b * T * C + i];
        t->dpos[i] += s;
    }
    pool_split(t->c->vocab_size, ith, nth, &b0, &e0);
    for (long i = 0; i < BT; i++) {
        long v = t->ids[i];
        if (v < b0 || v >= e0) continue;
        float *d = t->dtoken + v * C;
        const float *g = t->dres + i * C;
        for (long c = 0; c < C; c++) d[c] += g[c];
    }
}

// ---------------------------------------------------------------------------------------
// forward and backward

// How the blocks run: the pool, the kernels and, in bf16, this forward's rounded weights.
static struct transformer_exec text_exec(const struct text_model *m, const struct text_acts *a) {
    return (struct transformer_exec){m->pool, m->k, m->bf16 ? a->weights_bf16 : NULL};
}

void text_forward(const struct text_model *m, struct text_acts *a, const float *params,
                  const int32_t *ids, int B) {
    const struct text_config *c = &m->layout.config;
    const struct text_layout *L = &m->layout;
    CATLIP_ASSERT(B <= a->max_batch);
    CATLIP_ASSERT(a->bf16 == m->bf16 && (!m->bf16 || a->weights_bf16));  // text_acts_enable_bf16
    const int C = c->width, T = c->context;
    if (m->bf16) transformer_round_bf16(m->pool, a->weights_bf16, params, L->total);
    const struct transformer_exec e = text_exec(m, a);
    const struct transformer_shape s = text_shape(c);

    for (long i = 0; i < (long)B * T; i++) CATLIP_ASSERT(ids[i] >= 0 && ids[i] < c->vocab_size);
    memcpy(a->ids, ids, (size_t)B * (size_t)T * sizeof *ids);
    struct embed_task et = {.c = c, .ids = a->ids, .token_embedding = params + L->token_embedding,
                            .positional_embedding = params + L->positional_embedding,
                            .x0 = a->x0, .B = B};
    pool_run(m->pool, embed_forward_worker, &et);

    const float *x = a->x0;
    for (int l = 0; l < c->depth; l++) {
        transformer_block_forward(&e, &s, &a->blocks[l], params, &L->blocks[l], x, B);
        x = a->blocks[l].out;
    }

    for (int b = 0; b < B; b++) {
        int at = T - 1;
        for (int t = 0; t < T; t++)
            if (ids[(size_t)b * T + t] == c->eot_token) {
                at = t;
                break;
            }
        a->eot[b] = at;
        memcpy(a->pooled + (size_t)b * C, x + ((size_t)b * T + at) * C, (size_t)C * sizeof(float));
    }
    transformer_layernorm_forward(&e, a->lnf, NULL, a->lnf_mean, a->lnf_rstd, a->pooled,
                                  params + L->ln_final_w, params + L->ln_final_b, B, C);
    matmul_forward(m->pool, m->k, a->features, NULL, a->lnf, NULL, params + L->projection,
                   transformer_weight_bf16(&e, L->projection), NULL, NULL, B, C, c->embed_dim);
}

void text_backward(const struct text_model *m, struct text_acts *a, const float *params,
                   float *grads, const float *dfeatures, int B, text_grads_ready_fn on_ready,
                   void *ready_ctx) {
    const struct text_config *c = &m->layout.config;
    const struct text_layout *L = &m->layout;
    const int C = c->width, T = c->context;
    const struct transformer_exec e = text_exec(m, a);
    const struct transformer_shape s = text_shape(c);
    struct transformer_scratch *sc = &a->scratch;

    // features = lnf · Pᵀ
    matmul_backward(m->pool, a->dpooled, grads + L->projection, NULL, dfeatures, NULL, a->lnf, NULL,
                    params + L->projection, transformer_weight_bf16(&e, L->projection), B, C, c->embed_dim, 0);
    // lnf = LayerNorm(pooled)
    transformer_layernorm_backward(&e, sc->ln_partials, a->dpooled, grads + L->ln_final_w,
                                   grads + L->ln_final_b, a->dpooled, a->pooled,
                                   params + L->ln_final_w, a->lnf_mean, a->lnf_rstd, B, C);
    if (on_ready) on_ready(ready_ctx, L->ln_final_w, L->total);
    // pooled = x[b, eot_b]: the residual-stream gradient is zero elsewhere.
    memset(sc->dres, 0, (size_t)B * T * C * sizeof(float));
    for (int b = 0; b < B; b++)
        memcpy(sc->dres + ((size_t)b * T + a->eot[b]) * C, a->dpooled + (size_t)b * C,
               (size_t)C * sizeof(float));

    for (int l = c->depth - 1; l >= 0; l--) {
        const float *x = l == 0 ? a->x0 : a->blocks[l - 1].out;
        transformer_block_backward(&e, &s, &a->blocks[l], sc, params, grads, &L->blocks[l], x, B);
        if (on_ready) on_ready(ready_ctx, L->blocks[l].begin, L->blocks[l].end);
    }

    struct embed_task et = {.c = c, .ids = a->ids, .B = B, .dres = sc->dres,
                            .dtoken = grads + L->token_embedding,
                            .dpos = grads + L->positional_embedding};
    pool_run(m->pool, embed_backward_worker, &et);
    if (on_ready) on_ready(ready_ctx, 0, L->blocks[0].begin);
}

double text_forward_macs(const struct text_config *c) {
    double C = c->width, T = c->context, Hd = c->mlp_hidden;
    double per_block = T * C * 3 * C      // qkv
                       + 2 * T * T * C    // scores and values, all heads
                       + T * C * C        // out_proj
                       + 2 * T * C * Hd;  // c_fc, c_proj
    return c->depth * per_block + C * c->embed_dim;
}
