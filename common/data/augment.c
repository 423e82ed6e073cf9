#include "data/augment.h"

#include <math.h>

#include "core/rng.h"

// A stream id that keeps augmentation draws apart from other users of the same sample key.
enum { AUGMENT_STREAM = 0x61756721 };

void augment_options_defaults(struct augment_options *opt) {
    if (opt->resize_size <= 0) opt->resize_size = (int)(long)nearbyint(opt->image_size * 256.0 / 224.0);
    if (opt->scale_min <= 0 && opt->scale_max <= 0) {
        opt->scale_min = 0.08f;
        opt->scale_max = 1.0f;
    }
    if (opt->ratio_min <= 0 && opt->ratio_max <= 0) {
        opt->ratio_min = 3.0f / 4.0f;
        opt->ratio_max = 4.0f / 3.0f;
    }
    if (opt->flip_probability < 0) opt->flip_probability = 0.5f;
}

static double uniform(struct rng *r, double lo, double hi) { return lo + (hi - lo) * rng_uniform(r); }

// torchvision.transforms.RandomResizedCrop.get_params, on integer pixel boxes. Python's round()
// rounds halves to even, as nearbyint() does in the default rounding mode.
static void random_resized_crop(const struct augment_options *opt, int W, int H, struct rng *r,
                                struct crop_box *box) {
    double area = (double)W * H;
    double log_lo = log(opt->ratio_min), log_hi = log(opt->ratio_max);
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * uniform(r, opt->scale_min, opt->scale_max);
        double aspect = exp(uniform(r, log_lo, log_hi));
        long w = (long)nearbyint(sqrt(target * aspect));
        long h = (long)nearbyint(sqrt(target / aspect));
        if (w > 0 && w <= W && h > 0 && h <= H) {
            long i = (long)rng_below(r, (uint64_t)(H - h + 1));
            long j = (long)rng_below(r, (uint64_t)(W - w + 1));
            box->x0 = (double)j;
            box->y0 = (double)i;
            box->x1 = (double)(j + w);
            box->y1 = (double)(i + h);
            return;
        }
    }
    double in_ratio = (double)W / H;
    long w, h;
    if (in_ratio < opt->ratio_min) {
        w = W;
        h = (long)nearbyint(w / opt->ratio_min);
    } else if (in_ratio > opt->ratio_max) {
        h = H;
        w = (long)nearbyint(h * opt->ratio_max);
    } else {
        w = W;
        h = H;
    }
    if (w > W) w = W;
    if (h > H) h = H;
    if (w < 1) w = 1;
    if (h < 1) h = 1;
    long i = (H - h) / 2, j = (W - w) / 2;
    box->x0 = (double)j;
    box->y0 = (double)i;
    box->x1 = (double)(j + w);
    box->y1 = (double)(i + h);
}

// Resize(resize_size) then CenterCrop(image_size), expressed as one box of the source.
static void resize_center_crop(const struct augment_options *opt, int W, int H, struct crop_box *box) {
    int R = opt->resize_size, S = opt->image_size;
    long ow, oh;
    if (W <= H) {
        ow = R;
        oh = (long)((double)R * H / W);
    } else {
        oh = R;
        ow = (long)((double)R * W / H);
    }
    if (ow < S) ow = S;
    if (oh < S) oh = S;
    long top = (long)nearbyint((oh - S) / 2.0), left = (long)nearbyint((ow - S) / 2.0);
    double sx = (double)W / ow, sy = (double)H / oh;
    box->x0 = left * sx;
    box->x1 = (left + S) * sx;
    box->y0 = top * sy;
    box->y1 = (top + S) * sy;
}

void augment_plan(const struct augment_options *opt, int width, int height, uint64_t seed,
                  uint64_t epoch, uint64_t sample, struct crop_box *box) {
    box->flip = 0;
    if (!opt->train) {
        resize_center_crop(opt, width, height, box);
        return;
    }
    struct rng r;
    rng_init(&r, rng_key(seed ^ AUGMENT_STREAM, epoch, sample, 0));
    random_resized_crop(opt, width, height, &r, box);
    box->flip = rng_uniform(&r) < opt->flip_probability;
}
