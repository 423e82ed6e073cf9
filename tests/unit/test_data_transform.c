// Augmentation and resampling: RandomResizedCrop geometry (torchvision's rules), the eval
// resize + centre crop, the resampling filter against a direct reference, normalisation,
// flip, and region decoding against full decoding.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "data/augment.h"
#include "data/jpeg.h"
#include "data/resample.h"
#include "data/transform.h"
#include "cpu_require.h"

static const float MEAN[3] = {0.485f, 0.456f, 0.406f}, STD[3] = {0.229f, 0.224f, 0.225f};

static void train_options(struct augment_options *o, int S) {
    memset(o, 0, sizeof *o);
    o->train = 1;
    o->image_size = S;
    o->flip_probability = -1;
    augment_options_defaults(o);
}

static void test_random_resized_crop_geometry(void **state) {
    struct augment_options o;
    train_options(&o, 224);
    const int sizes[][2] = {{500, 375}, {375, 500}, {224, 224}, {1000, 300}, {64, 48}};
    int flips = 0, n = 0;
    for (int k = 0; k < 5; k++) {
        int W = sizes[k][0], H = sizes[k][1];
        for (uint64_t s = 0; s < 400; s++) {
            struct crop_box b, again;
            augment_plan(&o, W, H, 11, 2, s, &b);
            augment_plan(&o, W, H, 11, 2, s, &again);
            // A function of (seed, epoch, sample).
            assert_true(b.x0 == again.x0 && b.y0 == again.y0 && b.x1 == again.x1 && b.y1 == again.y1 &&
                        b.flip == again.flip);
            double w = b.x1 - b.x0, h = b.y1 - b.y0;
            assert_true(b.x0 >= 0 && b.y0 >= 0 && b.x1 <= W && b.y1 <= H && w >= 1 && h >= 1);
            assert_true(w == floor(w) && h == floor(h) && b.x0 == floor(b.x0) && b.y0 == floor(b.y0));
            // Area in [0.08, 1] of the image and aspect in [3/4, 4/3], up to rounding to pixels.
            assert_true((w + 0.5) * (h + 0.5) >= 0.08 * W * H);
            assert_true((w + 0.5) / (h - 0.5 > 0.5 ? h - 0.5 : 0.5) >= 0.75 - 1e-9);
            assert_true((w - 0.5) / (h + 0.5) <= 4.0 / 3.0 + 1e-9);
            flips += b.flip;
            n++;
        }
    }
    assert_true(flips > n * 0.45 && flips < n * 0.55);
    // Different epochs and samples give different crops.
    struct crop_box a, b;
    augment_plan(&o, 500, 375, 11, 2, 5, &a);
    augment_plan(&o, 500, 375, 11, 3, 5, &b);
    assert_true(a.x0 != b.x0 || a.y0 != b.y0 || a.x1 != b.x1 || a.y1 != b.y1);
    augment_plan(&o, 500, 375, 11, 2, 6, &b);
    assert_true(a.x0 != b.x0 || a.y0 != b.y0 || a.x1 != b.x1 || a.y1 != b.y1);
    // When no try fits (a 1000x10 strip), torchvision's fallback: full height, ratio 4/3, centred.
    augment_plan(&o, 1000, 10, 1, 0, 0, &a);
    assert_true(a.y0 == 0 && a.y1 == 10 && a.x1 - a.x0 == 13 && a.x0 == 493);
}

static void test_eval_resize_and_centre_crop(void **state) {
    struct augment_options o = {.train = 0, .image_size = 224};
    augment_options_defaults(&o);
    assert_int_equal(o.resize_size, 256);
    struct crop_box b;
    // 500x375 -> Resize(256) = 341x256 -> CenterCrop(224): left round(58.5) = 58 (half to even), top 16.
    augment_plan(&o, 500, 375, 0, 0, 0, &b);
    assert_true(fabs(b.x0 - 58 * 500.0 / 341) < 1e-9 && fabs(b.x1 - 282 * 500.0 / 341) < 1e-9);
    assert_true(fabs(b.y0 - 16 * 375.0 / 256) < 1e-9 && fabs(b.y1 - 240 * 375.0 / 256) < 1e-9);
    assert_int_equal(b.flip, 0);
    augment_plan(&o, 256, 256, 0, 0, 0, &b);
    assert_true(b.x0 == 16 && b.x1 == 240 && b.y0 == 16 && b.y1 == 240);
}

// A textured test image.
static void make_image(struct image *img, int W, int H, unsigned seed) {
    image_reserve(img, W, H);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t *p = img->pixels + ((size_t)y * W + x) * 3;
            p[0] = (uint8_t)((x * 7 + y * 3 + seed) % 256);
            p[1] = (uint8_t)(128 + 100 * sin(x * 0.05 + seed) * cos(y * 0.07));
            p[2] = (uint8_t)(((x ^ y) * 5 + seed) % 256);
        }
}

static double triangle(double x) {
    x = fabs(x);
    return x < 1 ? 1 - x : 0;
}

// Direct evaluation: every source pixel's weight, from the filter's definition, in double.
static void reference_resample(double *out, const struct image *src, double x0, double y0, double x1, double y1,
                               int S) {
    double sx = (x1 - x0) / S, sy = (y1 - y0) / S, fx = sx > 1 ? sx : 1, fy = sy > 1 ? sy : 1;
    double *wx = malloc(sizeof(double) * src->width), *wy = malloc(sizeof(double) * src->height);
    for (int oy = 0; oy < S; oy++) {
        double cy = y0 + (oy + 0.5) * sy, ny = 0;
        for (int i = 0; i < src->height; i++) ny += wy[i] = triangle((i + 0.5 - cy) / fy);
        for (int ox = 0; ox < S; ox++) {
            double cx = x0 + (ox + 0.5) * sx, nx = 0;
            for (int j = 0; j < src->width; j++) nx += wx[j] = triangle((j + 0.5 - cx) / fx);
            for (int c = 0; c < 3; c++) {
                double acc = 0;
                for (int i = 0; i < src->height; i++) {
                    if (wy[i] == 0) continue;
                    for (int j = 0; j < src->width; j++)
                        if (wx[j] != 0) acc += wy[i] * wx[j] * src->pixels[((size_t)i * src->width + j) * 3 + c];
                }
                out[((size_t)c * S + oy) * S + ox] = acc / (nx * ny);
            }
        }
    }
    free(wx);
    free(wy);
}

static void test_resample_matches_reference_and_normalises(void **state) {
    struct image src = {0};
    make_image(&src, 157, 121, 3);
    const double boxes[][4] = {
        {0, 0, 157, 121},        // whole image, shrink
        {10.5, 7.25, 140, 100},  // fractional box
        {40, 30, 70, 60},        // enlarge (30 px -> 48)
        {0, 0, 20, 121},         // thin strip at the border
        {100, 50, 157, 121},     // touching the far corner
    };
    const int S = 48;
    float *out = malloc(sizeof(float) * 3 * S * S), *flipped = malloc(sizeof(float) * 3 * S * S);
    double *ref = malloc(sizeof(double) * 3 * S * S);
    struct resample_scratch scratch = {0};
    for (int k = 0; k < 5; k++) {
        const double *b = boxes[k];
        resample_to_chw(out, &src, b[0], b[1], b[2], b[3], S, 0, MEAN, STD, &scratch);
        reference_resample(ref, &src, b[0], b[1], b[2], b[3], S);
        double worst = 0;
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < S * S; i++) {
                double expect = (ref[c * S * S + i] / 255.0 - MEAN[c]) / STD[c];
                double d = fabs(out[c * S * S + i] - expect);
                if (d > worst) worst = d;
            }
        assert_true(worst < 1e-4);  // about 0.006 grey levels
        // Flip: the mirror image, exactly.
        resample_to_chw(flipped, &src, b[0], b[1], b[2], b[3], S, 1, MEAN, STD, &scratch);
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++)
                    assert_true(flipped[(c * S + y) * S + x] == out[(c * S + y) * S + (S - 1 - x)]);
    }
    // A flat colour comes out as exactly (v / 255 - mean) / std.
    for (size_t i = 0; i < (size_t)src.width * src.height; i++) {
        src.pixels[i * 3] = 200;
        src.pixels[i * 3 + 1] = 100;
        src.pixels[i * 3 + 2] = 50;
    }
    resample_to_chw(out, &src, 3.3, 2.2, 120.7, 99.9, S, 1, MEAN, STD, &scratch);
    const double v[3] = {200, 100, 50};
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < S * S; i++) assert_true(fabs(out[c * S * S + i] - (v[c] / 255 - MEAN[c]) / STD[c]) < 1e-5);
    resample_scratch_free(&scratch);
    image_free(&src);
    free(out);
    free(flipped);
    free(ref);
}

// A photo-like image: smooth shapes, detail at a few pixels and up.
static void make_smooth_image(struct image *img, int W, int H) {
    image_reserve(img, W, H);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t *p = img->pixels + ((size_t)y * W + x) * 3;
            p[0] = (uint8_t)(128 + 90 * sin(x * 0.031) * cos(y * 0.023) + 30 * sin((x + y) * 0.21));
            p[1] = (uint8_t)(128 + 100 * cos(x * 0.017 + y * 0.011));
            p[2] = (uint8_t)(100 + 60 * sin(y * 0.05) + 40 * cos(x * 0.13));
        }
}

// transform_jpeg's region decode (and DCT scaling when the crop is large) against decoding the
// whole image and cropping it.
static void test_region_decode_matches_full_decode(void **state) {
    struct jpeg_codec *codec = jpeg_codec_create();
    struct transform_ctx region, full;
    transform_ctx_init(&region);
    transform_ctx_init(&full);
    full.full_decode = 1;
    const int sizes[][2] = {{300, 200}, {1200, 900}};
    const int S = 64;
    float *a = malloc(sizeof(float) * 3 * S * S), *b = malloc(sizeof(float) * 3 * S * S);
    for (int k = 0; k < 2; k++) {
        struct image img = {0};
        make_smooth_image(&img, sizes[k][0], sizes[k][1]);
        unsigned char *jpeg;
        size_t size;
        assert_int_equal(jpeg_encode_rgb(codec, &img, 92, &jpeg, &size), 0);
        struct augment_options o;
        train_options(&o, S);
        double worst_mean = 0;
        int scaled = 0;
        for (uint64_t s = 0; s < 40; s++) {
            assert_int_equal(transform_jpeg(&region, jpeg, size, &o, MEAN, STD, 1, 0, s, a), TRANSFORM_OK);
            assert_int_equal(transform_jpeg(&full, jpeg, size, &o, MEAN, STD, 1, 0, s, b), TRANSFORM_OK);
            struct crop_box box;
            augment_plan(&o, img.width, img.height, 1, 0, s, &box);
            int denom = jpeg_pick_scale(box.x1 - box.x0, box.y1 - box.y0, S, S);
            double sum = 0, worst = 0;
            for (int i = 0; i < 3 * S * S; i++) {
                double d = fabs(a[i] - b[i]);
                sum += d;
                if (d > worst) worst = d;
            }
            if (denom == 1) {
                assert_true(worst < 1e-5);  // the same pixels, the same filter
            } else {
                scaled++;
                if (sum / (3 * S * S) > worst_mean) worst_mean = sum / (3 * S * S);
            }
        }
        // DCT-scaled decodes differ from shrinking the full decode a little: the scaled IDCT is a
        // block average before our filter, so fine detail (the 30-pixel ripple here) loses more
        // at 1/4 and 1/8. Measured 0.65 grey levels (1/2 only) and 3.6 (down to 1/8); a crop
        // placed or scaled wrongly is tens of grey levels off.
        printf("  %dx%d: %d DCT-scaled crops, worst mean difference %.3f grey levels\n", sizes[k][0], sizes[k][1], scaled, worst_mean * 0.226 * 255);
        assert_true(worst_mean * 0.226 * 255 < (k == 0 ? 1.0 : 5.0));
        if (k == 1) assert_true(scaled > 10);
        jpeg_free_buffer(jpeg);
        image_free(&img);
    }
    // Bad input is reported, not decoded.
    assert_int_equal(transform_jpeg(&region, "", 0, &(struct augment_options){.train = 1, .image_size = S}, MEAN, STD,
                                    0, 0, 0, a),
                     TRANSFORM_EMPTY);
    assert_int_equal(transform_jpeg(&region, "\xff\xd8garbage", 9, &(struct augment_options){.train = 1, .image_size = S},
                                    MEAN, STD, 0, 0, 0, a),
                     TRANSFORM_BAD_IMAGE);
    free(a);
    free(b);
    transform_ctx_free(&region);
    transform_ctx_free(&full);
    jpeg_codec_destroy(codec);
}

int main(void) {
    // One ctest test per resampler path: CATLIP_TEST_PATH=scalar|avx2|avx512 runs the whole
    // program with the resampler forced to that path (CATLIP_ISA), or skips (77) when the CPU
    // lacks it (CATLIP_ISA naming a path the CPU lacks is an error: core/cpu.h).
    const char *path = getenv("CATLIP_TEST_PATH");
    if (path != NULL && path[0] != '\0') {
        if ((strcmp(path, "avx2") == 0 && !cpu_has(CPU_AVX2)) ||
            (strcmp(path, "avx512") == 0 && !cpu_has(CPU_AVX512))) {
            test_note_cpu_lacks(path);
            return test_exit_status(0);
        }
        setenv("CATLIP_ISA", path, 1);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_resized_crop_geometry),
        cmocka_unit_test(test_eval_resize_and_centre_crop),
        cmocka_unit_test(test_resample_matches_reference_and_normalises),
        cmocka_unit_test(test_region_decode_matches_full_decode),
    };
    return test_exit_status(cmocka_run_group_tests(tests, NULL, NULL));
}
