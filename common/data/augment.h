// Augmentation geometry: which region of a source image becomes the model's input.
//
// Training: RandomResizedCrop as torchvision defines it (area scale in [0.08, 1], aspect ratio
// log-uniform in [3/4, 4/3], ten tries then a centre crop clamped to the ratio range), and a
// horizontal flip with probability 1/2. Evaluation: resize the shorter side to `resize_size`
// (torchvision's Resize(int)) and take the centre `image_size` square (CenterCrop).
//
// The randomness of a sample comes from rng_key(seed, epoch, sample index) only, never from
// thread timing, so a sample gets the same crop whichever thread or worker decodes it.
// The pixels are produced by resample_to_chw() (resample.h).
#pragma once
#include <stdint.h>

struct augment_options {
    int train;           // 1: random crop + flip; 0: resize + centre crop
    int image_size;      // output side S
    int resize_size;     // eval: shorter side before the centre crop (0: S * 256 / 224, rounded)
    float scale_min, scale_max;  // train crop area fraction; 0/0: 0.08 / 1.0
    float ratio_min, ratio_max;  // train crop aspect range; 0/0: 3/4 / 4/3
    float flip_probability;      // train; < 0: 0.5
};

// A region of the full-size source, in pixel coordinates (x1, y1 exclusive).
struct crop_box {
    double x0, y0, x1, y1;
    int flip;
};

// Fills defaults for zero fields (see above).
void augment_options_defaults(struct augment_options *opt);

// The region to use for a width x height source. For train, the random draws come from
// rng_key(seed, epoch, sample); eval ignores them.
void augment_plan(const struct augment_options *opt, int width, int height, uint64_t seed,
                  uint64_t epoch, uint64_t sample, struct crop_box *box);
