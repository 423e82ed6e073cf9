// JPEG decoding against an independent decoder (PIL, from Debian's python3-pil): mean absolute
// difference below 1 grey level at full size for every kind of JPEG; region decoding equal to
// full decoding; broken files rejected with an error, never a crash or a grey image.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

#include "core/check.h"
#include "data/jpeg.h"
#include "data/png.h"
#include "tests/data/fixtures.h"

static const char *dir;

// Binary PPM (P6, maxval 255) as PIL writes it.
static int read_ppm(const char *path, struct image *img) {
    size_t n;
    unsigned char *buf = fixture_read(path, &n);
    if (!buf) return -1;
    int w, h, maxval, off = 0;
    if (sscanf((char *)buf, "P6 %d %d %d%n", &w, &h, &maxval, &off) != 3 || maxval != 255) {
        free(buf);
        return -1;
    }
    off++;  // the single whitespace after maxval
    image_reserve(img, w, h);
    memcpy(img->pixels, buf + off, (size_t)w * h * 3);
    free(buf);
    return 0;
}

static double mean_abs_diff(const struct image *a, const struct image *b) {
    assert_int_equal(a->width, b->width);
    assert_int_equal(a->height, b->height);
    double sum = 0;
    size_t n = (size_t)a->width * a->height * 3;
    for (size_t i = 0; i < n; i++) sum += fabs((double)a->pixels[i] - b->pixels[i]);
    return sum / n;
}

static void compare_with_pil(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.jpg", dir, name);
    size_t size = 0;
    unsigned char *data = fixture_read(path, &size);
    assert_non_null(data);
    struct jpeg_codec *c = jpeg_codec_create();
    struct image ours = {0}, pil = {0};
    assert_int_equal(jpeg_decode_rgb(c, data, size, 1, &ours), 0);
    snprintf(path, sizeof path, "%s/%s.ppm", dir, name);
    assert_int_equal(read_ppm(path, &pil), 0);
    double mad = mean_abs_diff(&ours, &pil);
    printf("  %-12s %dx%d  mean |catlip - PIL| = %.4f grey levels\n", name, ours.width, ours.height, mad);
    assert_true(mad < 1.0);

    // The region decoder gives the same pixels inside a region away from its rounded-out edges.
    int x0 = ours.width / 5, y0 = ours.height / 3, x1 = ours.width * 4 / 5, y1 = ours.height - 2;
    struct image region = {0};
    int ox, oy;
    assert_int_equal(jpeg_decode_region(c, data, size, 1, x0, y0, x1, y1, &region, &ox, &oy), 0);
    assert_true(ox <= x0 && oy == y0 && ox + region.width >= x1 && region.height == y1 - y0);
    long differ = 0;
    for (int y = 0; y < region.height; y++)
        for (int x = x0 - ox + 1; x < x1 - ox - 1; x++)
            for (int ch = 0; ch < 3; ch++)
                differ += region.pixels[((size_t)y * region.width + x) * 3 + ch] !=
                          ours.pixels[((size_t)(y + oy) * ours.width + x + ox) * 3 + ch];
    assert_int_equal(differ, 0);
    image_free(&region);
    image_free(&ours);
    image_free(&pil);
    jpeg_codec_destroy(c);
    free(data);
}

static void test_rgb420(void **state) { compare_with_pil("rgb420"); }
static void test_rgb422(void **state) { compare_with_pil("rgb422"); }
static void test_rgb444(void **state) { compare_with_pil("rgb444"); }
static void test_progressive(void **state) { compare_with_pil("progressive"); }
static void test_odd_size(void **state) { compare_with_pil("odd"); }
static void test_grayscale(void **state) { compare_with_pil("gray"); }
static void test_cmyk(void **state) { compare_with_pil("cmyk"); }
static void test_large(void **state) { compare_with_pil("large"); }

// DCT-domain downscaling: the same pixels as PIL's draft mode (libjpeg's scaled IDCT).
static void test_dct_scaling(void **state) {
    char path[1024];
    snprintf(path, sizeof path, "%s/large.jpg", dir);
    size_t size = 0;
    unsigned char *data = fixture_read(path, &size);
    assert_non_null(data);
    struct jpeg_codec *c = jpeg_codec_create();
    struct image half = {0}, pil = {0};
    assert_int_equal(jpeg_decode_rgb(c, data, size, 2, &half), 0);
    assert_int_equal(half.width, 500);
    assert_int_equal(half.height, 360);
    snprintf(path, sizeof path, "%s/large_half.ppm", dir);
    assert_int_equal(read_ppm(path, &pil), 0);
    double mad = mean_abs_diff(&half, &pil);
    printf("  large at 1/2 mean |catlip - PIL draft| = %.4f grey levels\n", mad);
    assert_true(mad < 1.0);
    assert_int_equal(jpeg_pick_scale(1000, 720, 224, 224), 2);
    assert_int_equal(jpeg_pick_scale(1000, 900, 224, 224), 4);
    assert_int_equal(jpeg_pick_scale(447, 1000, 224, 224), 1);
    assert_int_equal(jpeg_pick_scale(5000, 5000, 224, 224), 8);
    image_free(&half);
    image_free(&pil);
    jpeg_codec_destroy(c);
    free(data);
}

static void expect_failure(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.jpg", dir, name);
    size_t size = 0;
    unsigned char *data = fixture_read(path, &size);
    assert_non_null(data);
    struct jpeg_codec *c = jpeg_codec_create();
    struct image img = {0};
    int ox, oy;
    assert_int_equal(jpeg_decode_rgb(c, data, size, 1, &img), -1);
    assert_true(strlen(catlip_error()) > 0);
    assert_int_equal(jpeg_decode_region(c, data, size, 1, 0, 0, 10, 10, &img, &ox, &oy), -1);
    // The codec stays usable after a failure.
    snprintf(path, sizeof path, "%s/rgb420.jpg", dir);
    size_t good_size = 0;
    unsigned char *good = fixture_read(path, &good_size);
    assert_int_equal(jpeg_decode_region(c, good, good_size, 1, 0, 0, 10, 10, &img, &ox, &oy), 0);
    assert_int_equal(jpeg_decode_rgb(c, good, good_size, 1, &img), 0);
    free(good);
    image_free(&img);
    jpeg_codec_destroy(c);
    free(data);
}

static void test_corrupt(void **state) { expect_failure("corrupt"); }
static void test_truncated(void **state) { expect_failure("truncated"); }
static void test_empty(void **state) { expect_failure("empty"); }
static void test_not_a_jpeg(void **state) { expect_failure("notjpeg"); }

static void test_encode_round_trip_and_png(void **state) {
    char path[1024];
    snprintf(path, sizeof path, "%s/smooth.ppm", dir);
    struct image src = {0}, back = {0};
    assert_int_equal(read_ppm(path, &src), 0);
    struct jpeg_codec *c = jpeg_codec_create();
    unsigned char *jpeg;
    size_t jpeg_size;
    assert_int_equal(jpeg_encode_rgb(c, &src, 95, &jpeg, &jpeg_size), 0);
    assert_int_equal(jpeg_decode_rgb(c, jpeg, jpeg_size, 1, &back), 0);
    assert_true(mean_abs_diff(&src, &back) < 3.0);
    jpeg_free_buffer(jpeg);
    // PNG written by PIL, RGBA with alpha dropped like convert("RGB").
    snprintf(path, sizeof path, "%s/rgba.png", dir);
    char cmd[2400];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"from PIL import Image; im=Image.open('%s/smooth.ppm').convert('RGBA'); "
             "im.putalpha(77); im.save('%s')\"",
             dir, path);
    assert_int_equal(system(cmd), 0);
    size_t size = 0;
    unsigned char *png = fixture_read(path, &size);
    assert_true(png_is_png(png, size));
    struct image decoded = {0};
    assert_int_equal(png_decode_rgb(png, size, &decoded), 0);
    assert_true(mean_abs_diff(&src, &decoded) == 0.0);
    assert_int_equal(png_decode_rgb(png, size / 2, &decoded), -1);
    free(png);
    image_free(&decoded);
    image_free(&src);
    image_free(&back);
    jpeg_codec_destroy(c);
}

int main(void) {
    dir = fixture_make("jpegs");
    if (!dir) {
        fprintf(stderr, "cannot make JPEG fixtures (needs /usr/bin/python3 with PIL)\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rgb420),      cmocka_unit_test(test_rgb422),
        cmocka_unit_test(test_rgb444),      cmocka_unit_test(test_progressive),
        cmocka_unit_test(test_odd_size),    cmocka_unit_test(test_grayscale),
        cmocka_unit_test(test_cmyk),        cmocka_unit_test(test_large),
        cmocka_unit_test(test_dct_scaling), cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_truncated),   cmocka_unit_test(test_empty),
        cmocka_unit_test(test_not_a_jpeg),  cmocka_unit_test(test_encode_round_trip_and_png),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    fixture_cleanup();
    return failed;
}
