// CRC-32C: the check value, RFC 3720 (iSCSI) appendix B.4 vectors, and the incremental and
// SSE4.2 paths held to the table path on random data at every length and alignment.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "core/rng.h"
#include "io/crc32c.h"
#include "cpu_require.h"

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

static void check_vectors(crc_fn crc) {
    assert_int_equal(crc(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(crc(0, "", 0), 0);
    uint8_t b[48];
    memset(b, 0, 32);
    assert_int_equal(crc(0, b, 32), 0x8A9136AAu);
    memset(b, 0xff, 32);
    assert_int_equal(crc(0, b, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++) b[i] = (uint8_t)i;
    assert_int_equal(crc(0, b, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++) b[i] = (uint8_t)(31 - i);
    assert_int_equal(crc(0, b, 32), 0x113FDB5Cu);
    // An iSCSI read command PDU.
    static const uint8_t pdu[48] = {
        0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
        0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    assert_int_equal(crc(0, pdu, 48), 0xD9963A56u);
}

static void vectors_dispatch(void **state) { check_vectors(crc32c_update); }
static void vectors_table(void **state) { check_vectors(crc32c_update_table); }
static void vectors_sse42(void **state) {
    if (!test_path_selected("sse42")) skip();
    REQUIRE_CPU(CPU_SSE42);
    check_vectors(crc32c_update_sse42);
}

static void paths_agree_and_incremental(void **state) {
    static uint8_t data[5000];
    struct rng r;
    rng_init(&r, rng_key(42, 0, 0, 0));
    for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)rng_u64(&r);
    bool hw = test_path_selected("sse42") && crc32c_have_sse42();
    if (test_path_selected("sse42") && !hw) test_note_cpu_lacks("sse42");
    for (size_t start = 0; start < 9; start++) {
        for (size_t n = 0; n + start <= sizeof data; n += n < 80 ? 1 : 331) {
            uint32_t want = crc32c_update_table(0, data + start, n);
            if (hw) assert_int_equal(crc32c_update_sse42(0, data + start, n), want);
            assert_int_equal(crc32c_update(0, data + start, n), want);
            // Any split point gives the same checksum.
            size_t cut = n ? rng_below(&r, n + 1) : 0;
            uint32_t c = crc32c_update(0, data + start, cut);
            assert_int_equal(crc32c_update(c, data + start + cut, n - cut), want);
            uint32_t t = crc32c_update_table(0, data + start, cut);
            assert_int_equal(crc32c_update_table(t, data + start + cut, n - cut), want);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(vectors_dispatch),
        cmocka_unit_test(vectors_table),
        cmocka_unit_test(vectors_sse42),
        cmocka_unit_test(paths_agree_and_incremental),
    };
    return test_exit_status(cmocka_run_group_tests(tests, NULL, NULL));
}
