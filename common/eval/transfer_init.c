#include "eval/transfer_init.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/rng.h"
#include "eval/head_score.h"
#include "text/hypernyms.h"
#include "text/wordnet.h"

static const char *const senses_names[] = {"first", "vocab"};
static const char *const pool_names[] = {"none", "hyponyms"};
static const char *const calibrate_names[] = {"none", "prior", "center", "standardize"};
static const char *const score_names[] = {"linear", "noisy-or"};

static int parse_name(const char *s, const char *const *names, int n) {
    for (int i = 0; s && i < n; i++)
        if (!strcmp(s, names[i])) return i;
    return -1;
}
int head_senses_parse(const char *s) {
    return parse_name(s, senses_names, 2);
}
int head_pool_parse(const char *s) {
    return parse_name(s, pool_names, 2);
}
int head_calibrate_parse(const char *s) {
    return parse_name(s, calibrate_names, 4);
}
int head_score_parse(const char *s) {
    return parse_name(s, score_names, 2);
}
const char *head_senses_name(enum head_senses s) {
    return (unsigned)s < 2 ? senses_names[s] : "?";
}
const char *head_pool_name(enum head_pool p) {
    return (unsigned)p < 2 ? pool_names[p] : "?";
}
const char *head_calibrate_name(enum head_calibrate c) {
    return (unsigned)c < 4 ? calibrate_names[c] : "?";
}
const char *head_score_name(enum head_score s) {
    return (unsigned)s < 2 ? score_names[s] : "?";
}

// Every vocabulary row's WordNet ancestors (dense index, hypernym steps), flattened.
struct row_ancestors {
    int V;
    int *dense;  // (V) the row's own dense index
    int *start;  // (V + 1) into idx/dist
    int *idx, *dist;
};

static void ancestors_build(const struct wordnet *wn, const struct hypernyms *h,
                            const struct vocab *vocab, struct row_ancestors *a) {
    int V = vocab_size(vocab), S = wordnet_synset_count(wn);
    a->V = V;
    a->dense = xmalloc((size_t)V * sizeof(int));
    a->start = xmalloc((size_t)(V + 1) * sizeof(int));
    int *dist = xmalloc((size_t)S * sizeof(int)), *touched = xmalloc((size_t)S * sizeof(int));
    for (int s = 0; s < S; s++) dist[s] = -1;
    size_t cap = (size_t)V * 16 + 16, n = 0;
    a->idx = xmalloc(cap * sizeof(int));
    a->dist = xmalloc(cap * sizeof(int));
    for (int v = 0; v < V; v++) {
        a->start[v] = (int)n;
        a->dense[v] = wordnet_synset_index(wn, (uint32_t)strtoul(vocab_id(vocab, v) + 1, NULL, 10));
        if (a->dense[v] < 0) continue;
        int reached = hypernyms_ancestors(h, a->dense[v], dist, touched);
        if (n + (size_t)reached > cap) {
            while (n + (size_t)reached > cap) cap *= 2;
            a->idx = xrealloc(a->idx, cap * sizeof(int));
            a->dist = xrealloc(a->dist, cap * sizeof(int));
        }
        for (int i = 0; i < reached; i++) {
            a->idx[n] = touched[i];
            a->dist[n++] = dist[touched[i]];
            dist[touched[i]] = -1;
        }
    }
    a->start[V] = (int)n;
    free(dist);
    free(touched);
}

static void ancestors_free(struct row_ancestors *a) {
    free(a->dense);
    free(a->start);
    free(a->idx);
    free(a->dist);
}

// Steps from row v up to synset `dense` (0: the row is that synset), -1 when not below it.
static int steps_below(const struct row_ancestors *a, int v, int dense) {
    for (int i = a->start[v]; i < a->start[v + 1]; i++)
        if (a->idx[i] == dense) return a->dist[i];
    return -1;
}

// Training mass of a synset: its own count, plus its vocabulary hyponyms' when pooling.
static double synset_mass(const struct row_ancestors *a, const struct vocab *vocab, int dense,
                          int pool) {
    double mass = 0;
    for (int v = 0; v < a->V; v++) {
        int d = steps_below(a, v, dense);
        if (d == 0 || (d > 0 && pool)) mass += (double)vocab_count(vocab, v);
    }
    return mass;
}

// Rows as matched (own or nearest), equal weights: the original rule.
static void matched_members(const struct transfer_class *c, const struct vocab *vocab,
                            struct head_class *b) {
    b->members = xmalloc((size_t)(c->nsynsets ? c->nsynsets : 1) * sizeof *b->members);
    b->nmembers = 0;
    b->mass = 0;
    for (int i = 0; i < c->nsynsets; i++) {
        int dup = 0;
        for (int j = 0; j < b->nmembers; j++) dup |= b->members[j].row == c->synsets[i].row;
        if (dup) continue;
        b->members[b->nmembers++].row = c->synsets[i].row;
        if (!strcmp(vocab_id(vocab, c->synsets[i].row), c->synsets[i].id))
            b->mass += (double)vocab_count(vocab, c->synsets[i].row);
    }
    for (int j = 0; j < b->nmembers; j++) b->members[j].weight = 1.0 / b->nmembers;
}

void head_pool_classes(const struct transfer_matcher *matcher, const struct vocab *vocab,
                       struct head_options opt, struct transfer_class *classes, int K,
                       struct head_class *built) {
    const struct wordnet *wn = transfer_matcher_wordnet(matcher);
    struct row_ancestors a;
    ancestors_build(wn, transfer_matcher_hypernyms(matcher), vocab, &a);
    int V = a.V;
    memset(built, 0, (size_t)K * sizeof *built);
    // 1. Senses: a class named by a lemma takes the sense with the most training mass.
    for (int k = 0; k < K; k++) {
        struct transfer_class *c = &classes[k];
        struct head_class *b = &built[k];
        b->chosen = -1;
        if (opt.senses != HEAD_SENSES_VOCAB || c->how != TRANSFER_NAME) continue;
        b->nsenses = transfer_name_senses(matcher, c->name, b->senses, HEAD_MAX_SENSES);
        // The senses the vocabulary has a row for, by their own counts (the captions' word
        // went to that sense); none: the sense with the most pooled mass below it.
        int best = -1, best_own = -1;
        double own_best = 0;
        for (int i = 0; i < b->nsenses; i++) {
            int dense = wordnet_synset_index(wn, b->senses[i]);
            double own = synset_mass(&a, vocab, dense, 0);
            b->sense_mass[i] = opt.pool ? synset_mass(&a, vocab, dense, 1) : own;
            if (own > own_best) own_best = own, best_own = i;
            if (b->sense_mass[i] > 0 && (best < 0 || b->sense_mass[i] > b->sense_mass[best]))
                best = i;
        }
        if (best_own >= 0) best = best_own;
        if (best < 0) continue;  // no sense known to the vocabulary: as matched
        b->chosen = best;
        uint32_t off = b->senses[best];
        struct transfer_synset *s = &c->synsets[0];
        char id[10];
        snprintf(id, sizeof id, "n%08u", off);
        if (c->nsynsets == 1 && !strcmp(s->id, id)) continue;
        memcpy(s->id, id, sizeof id);
        s->lemma = wordnet_synset_word(wn, off);
        s->row = vocab_index_offset(vocab, off);
        s->similarity = 1.0;
        if (s->row < 0) {  // only hyponyms in the vocabulary: report the heaviest one
            int dense = wordnet_synset_index(wn, off);
            for (int v = 0; v < V; v++)
                if (steps_below(&a, v, dense) > 0 &&
                    (s->row < 0 || vocab_count(vocab, v) > vocab_count(vocab, s->row)))
                    s->row = v;
            s->similarity = 0;
        }
        c->nsynsets = 1;
        c->nearest = 0;
    }
    // 2. Members.
    if (opt.pool != HEAD_POOL_HYPONYMS) {
        for (int k = 0; k < K; k++) matched_members(&classes[k], vocab, &built[k]);
        ancestors_free(&a);
        return;
    }
    // Each vocabulary row goes to the class(es) whose synset is its nearest ancestor-or-self.
    int *best_steps = xmalloc((size_t)V * sizeof(int));
    for (int v = 0; v < V; v++) best_steps[v] = -1;
    int *class_steps = xmalloc((size_t)K * V * sizeof(int));
    for (int k = 0; k < K; k++) {
        int dense[TRANSFER_MAX_SYNSETS];
        for (int i = 0; i < classes[k].nsynsets; i++)
            dense[i] =
                wordnet_synset_index(wn, (uint32_t)strtoul(classes[k].synsets[i].id + 1, NULL, 10));
        for (int v = 0; v < V; v++) {
            int d = -1;
            for (int i = 0; i < classes[k].nsynsets; i++) {
                int di = dense[i] >= 0 ? steps_below(&a, v, dense[i]) : -1;
                if (di >= 0 && (d < 0 || di < d)) d = di;
            }
            class_steps[(size_t)k * V + v] = d;
            if (d >= 0 && (best_steps[v] < 0 || d < best_steps[v])) best_steps[v] = d;
        }
    }
    for (int k = 0; k < K; k++) {
        struct head_class *b = &built[k];
        int n = 0;
        for (int v = 0; v < V; v++)
            n += class_steps[(size_t)k * V + v] >= 0 &&
                 class_steps[(size_t)k * V + v] == best_steps[v];
        if (n == 0) {
            matched_members(&classes[k], vocab, b);
            b->mass = 0;
            continue;
        }
        b->members = xmalloc((size_t)n * sizeof *b->members);
        b->mass = 0;
        for (int v = 0; v < V; v++) {
            int d = class_steps[(size_t)k * V + v];
            if (d < 0 || d != best_steps[v]) continue;
            b->members[b->nmembers].row = v;
            b->members[b->nmembers++].weight = (double)vocab_count(vocab, v);
            b->mass += (double)vocab_count(vocab, v);
        }
        for (int j = 0; j < b->nmembers; j++) b->members[j].weight /= b->mass;
    }
    free(class_steps);
    free(best_steps);
    ancestors_free(&a);
}

void head_classes_free(struct head_class *built, int K) {
    if (!built) return;
    for (int k = 0; k < K; k++) free(built[k].members);
}

void head_build(const struct transfer_class *classes, const struct head_class *built, int K,
                const float *head_w, const float *head_b, int V, int C, uint64_t seed,
                float *weight, float *bias) {
    double sum_sq = 0, sum_b = 0;
    for (size_t i = 0; i < (size_t)V * (size_t)C; i++) sum_sq += (double)head_w[i] * head_w[i];
    for (int v = 0; v < V; v++) sum_b += head_b[v];
    float rms = (float)sqrt(sum_sq / ((double)V * C)), mean_b = (float)(sum_b / V);
    (void)classes;
    for (int k = 0; k < K; k++) {
        const struct head_class *b = &built[k];
        float *w = weight + (size_t)k * C;  // (C)
        if (b->nmembers == 0) {
            struct rng r;
            rng_init(&r, rng_key(seed, (uint64_t)k, 0, 0));
            for (int j = 0; j < C; j++) w[j] = (float)rng_normal(&r) * rms;
            bias[k] = mean_b;
            continue;
        }
        for (int j = 0; j < C; j++) {
            double acc = 0;
            for (int i = 0; i < b->nmembers; i++)
                acc += b->members[i].weight * head_w[(size_t)b->members[i].row * C + j];
            w[j] = (float)acc;
        }
        double acc_b = 0;
        for (int i = 0; i < b->nmembers; i++)
            acc_b += b->members[i].weight * head_b[b->members[i].row];
        bias[k] = (float)acc_b;
    }
}

double head_prior_logodds(double mass, double captions) {
    if (mass <= 0 || captions <= 0) return 0;
    if (mass > captions - 0.5) mass = captions - 0.5;
    if (mass < 0.5) mass = 0.5;
    return log(mass / (captions - mass));
}

void head_prior_correct(const struct head_class *built, int K, double captions, float *bias) {
    for (int k = 0; k < K; k++) bias[k] -= (float)head_prior_logodds(built[k].mass, captions);
}

void head_calibrate_rows(enum head_calibrate mode, const double *feat_mean, const double *feat_cov,
                         int V, int C, float *head_w, float *head_b) {
    if (mode != HEAD_CALIBRATE_CENTER && mode != HEAD_CALIBRATE_STANDARDIZE) return;
    double *cw = xmalloc((size_t)C * sizeof(double));
    for (int k = 0; k < V; k++) {
        float *w = head_w + (size_t)k * C;
        double mean = head_b[k];
        for (int j = 0; j < C; j++) mean += w[j] * feat_mean[j];
        if (mode == HEAD_CALIBRATE_CENTER) {
            head_b[k] -= (float)mean;
            continue;
        }
        double var = 0;
        for (int i = 0; i < C; i++) {
            double row = 0;
            const double *ci = feat_cov + (size_t)i * C;
            for (int j = 0; j < C; j++) row += ci[j] * w[j];
            cw[i] = row;
            var += w[i] * row;
        }
        double sd = var > 1e-20 ? sqrt(var) : 1.0;
        for (int j = 0; j < C; j++) w[j] = (float)(w[j] / sd);
        head_b[k] = (float)((head_b[k] - mean) / sd);
    }
    free(cw);
}

// Captions the vocabulary was counted over ("captions=N" in its header), else the sum of counts.
static double vocab_captions(const struct vocab *vocab) {
    const char *p = strstr(vocab_header(vocab), "captions=");
    if (p) {
        double n = strtod(p + 9, NULL);
        if (n > 0) return n;
    }
    double sum = 0;
    for (int v = 0; v < vocab_size(vocab); v++) sum += (double)vocab_count(vocab, v);
    return sum;
}

static void print_report(FILE *out, const struct vocab *vocab, const struct wordnet *wn,
                         const struct transfer_class *c, const struct head_class *built, int K,
                         struct head_options opt) {
    int width = 5;
    for (int k = 0; k < K; k++) {
        int n = (int)strlen(c[k].name);
        if (n > width) width = n < 40 ? n : 40;
    }
    fprintf(out, "head: senses=%s pool=%s calibrate=%s score=%s\n", head_senses_name(opt.senses),
            head_pool_name(opt.pool), head_calibrate_name(opt.calibrate),
            head_score_name(opt.score));
    fprintf(out, "%-*s  %-8s  %s\n", width, "class", "how", "synsets used");
    int counts[4] = {0}, nearest = 0;
    for (int k = 0; k < K; k++) {
        counts[c[k].how]++;
        nearest += c[k].nearest > 0;
        fprintf(
            out, "%-*.*s  %-8s  ", width, width, c[k].name,
            c[k].nearest && c[k].how != TRANSFER_RANDOM ? "nearest" : transfer_how_name(c[k].how));
        if (c[k].nsynsets == 0) fprintf(out, "(nothing matched: random row)");
        for (int i = 0; i < c[k].nsynsets; i++) {
            char buf[256];
            if (c[k].synsets[i].similarity == 0)
                snprintf(buf, sizeof buf, "%s %s (not in the vocabulary; hyponyms are)",
                         c[k].synsets[i].id, c[k].synsets[i].lemma ? c[k].synsets[i].lemma : "?");
            else
                transfer_format_synset(vocab, &c[k].synsets[i], buf, sizeof buf);
            fprintf(out, "%s%s", i ? "; " : "", buf);
        }
        fputc('\n', out);
        const struct head_class *b = &built[k];
        if (b->nsenses > 1) {
            fprintf(out, "%-*s    senses (training mass):", width, "");
            for (int i = 0; i < b->nsenses; i++)
                fprintf(out, " %sn%08u %s %.0f", i == b->chosen ? "*" : "", b->senses[i],
                        wordnet_synset_word(wn, b->senses[i]), b->sense_mass[i]);
            fputc('\n', out);
        }
        if (b->nmembers > 1 || (b->nmembers == 1 && opt.pool == HEAD_POOL_HYPONYMS)) {
            fprintf(out, "%-*s    rows (%d, mass %.0f):", width, "", b->nmembers, b->mass);
            // the heaviest 8
            int shown[8], ns = 0;
            for (; ns < 8 && ns < b->nmembers; ns++) {
                int best = -1;
                for (int i = 0; i < b->nmembers; i++) {
                    int used = 0;
                    for (int j = 0; j < ns; j++) used |= shown[j] == i;
                    if (!used && (best < 0 || b->members[i].weight > b->members[best].weight))
                        best = i;
                }
                shown[ns] = best;
                fprintf(out, " %s %.3f", vocab_lemma(vocab, b->members[best].row),
                        b->members[best].weight);
            }
            if (b->nmembers > ns) fprintf(out, " ... (%d more)", b->nmembers - ns);
            fputc('\n', out);
        }
    }
    fprintf(out,
            "transfer: %d classes: %d by synset id, %d by name, %d labelled like captions, %d "
            "using a nearest vocabulary synset, %d random\n",
            K, counts[TRANSFER_ID], counts[TRANSFER_NAME], counts[TRANSFER_CAPTION], nearest,
            counts[TRANSFER_RANDOM]);
}

int transfer_head_from_classes(const struct inference_model *m, const char *classes_path,
                               const char *wordnet_dir, uint64_t seed, struct head_options opt,
                               const struct head_reference *ref, FILE *report,
                               struct transfer_head *out) {
    memset(out, 0, sizeof *out);
    if (!m->vocab)
        return catlip_error_set("%s: trained without a vocabulary: no synset head to transfer",
                                m->path);
    int needs_ref =
        opt.calibrate == HEAD_CALIBRATE_CENTER || opt.calibrate == HEAD_CALIBRATE_STANDARDIZE;
    if (needs_ref && (!ref || ref->n < 2 || ref->C != m->config.dim))
        return catlip_error_set("--calibrate %s needs reference image statistics",
                                head_calibrate_name(opt.calibrate));
    struct labeler *lab = labeler_create(wordnet_dir, LABELER_NOUNS);
    if (!lab) return -1;
    struct transfer_matcher *matcher = transfer_matcher_create(lab, m->vocab, wordnet_dir);
    int K = matcher ? transfer_match_file(matcher, classes_path, &out->classes) : -1;
    if (K > 0) {
        const struct vit_layout *l = &m->model.layout;
        out->K = K;
        out->C = m->config.dim;
        out->weight = xmalloc((size_t)K * out->C * sizeof(float));
        out->bias = xmalloc((size_t)K * sizeof(float));
        out->built = xcalloc((size_t)K, sizeof *out->built);
        out->captions = vocab_captions(m->vocab);
        head_pool_classes(matcher, m->vocab, opt, out->classes, K, out->built);
        int V = m->config.num_classes, C = out->C;
        const float *raw_w = m->params + l->head_w, *raw_b = m->params + l->head_b;
        const float *head_w = raw_w, *head_b = raw_b;
        // A noisy-OR head needs the rows' probabilities: its calibration is per class, after.
        int noisy = opt.score == HEAD_SCORE_NOISY_OR;
        float *cal_w = NULL, *cal_b = NULL;
        if (needs_ref && !noisy) {
            cal_w = xmalloc((size_t)V * C * sizeof(float));
            cal_b = xmalloc((size_t)V * sizeof(float));
            memcpy(cal_w, raw_w, (size_t)V * C * sizeof(float));
            memcpy(cal_b, raw_b, (size_t)V * sizeof(float));
            head_calibrate_rows(opt.calibrate, ref->mean, ref->cov, V, C, cal_w, cal_b);
            head_w = cal_w, head_b = cal_b;
        }
        head_build(out->classes, out->built, K, head_w, head_b, V, C, seed, out->weight, out->bias);
        if (cal_w) {
            // A random row is drawn at the raw head's scale and then calibrated like a synset
            // row, so its score over the reference images is standardised like every other.
            float *rnd_w = xmalloc((size_t)K * C * sizeof(float)),
                  *rnd_b = xmalloc(K * sizeof(float));
            head_build(out->classes, out->built, K, raw_w, raw_b, V, C, seed, rnd_w, rnd_b);
            for (int k = 0; k < K; k++) {
                if (out->built[k].nmembers) continue;
                memcpy(out->weight + (size_t)k * C, rnd_w + (size_t)k * C, C * sizeof(float));
                out->bias[k] = rnd_b[k];
                head_calibrate_rows(opt.calibrate, ref->mean, ref->cov, 1, C,
                                    out->weight + (size_t)k * C, out->bias + k);
            }
            free(rnd_w);
            free(rnd_b);
        }
        free(cal_w);
        free(cal_b);
        if (noisy) {
            head_noisy_or_prepare(out, raw_w, raw_b);
            head_noisy_or_calibrate(out, opt.calibrate, ref);
        } else if (opt.calibrate == HEAD_CALIBRATE_PRIOR) {
            head_prior_correct(out->built, K, out->captions, out->bias);
        }
        if (report)
            print_report(report, m->vocab, labeler_wordnet(lab), out->classes, out->built, K, opt);
    }
    transfer_matcher_free(matcher);
    labeler_free(lab);
    return K > 0 ? 0 : -1;
}

void transfer_head_free(struct transfer_head *h) {
    free(h->weight);
    free(h->bias);
    free(h->classes);
    head_classes_free(h->built, h->K);
    free(h->built);
    free(h->member_start);
    free(h->member_w);
    free(h->member_b);
    free(h->shift);
    free(h->scale);
    memset(h, 0, sizeof *h);
}
