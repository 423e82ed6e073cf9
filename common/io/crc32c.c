#include "io/crc32c.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "core/cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#define CRC32C_X86 1
#endif

#define CRC32C_POLY 0x82F63B78u  // reflected Castagnoli polynomial

// table[k][b]: the CRC of byte b followed by k zero bytes (slicing-by-8).
static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_build(void) {
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = b;
        for (int i = 0; i < 8; i++) c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1)));
        table[0][b] = c;
    }
    for (uint32_t b = 0; b < 256; b++)
        for (int k = 1; k < 8; k++)
            table[k][b] = (table[k - 1][b] >> 8) ^ table[0][table[k - 1][b] & 0xff];
}

uint32_t crc32c_update_table(uint32_t crc, const void *data, size_t n) {
    pthread_once(&table_once, table_build);
    const uint8_t *p = data;
    uint32_t c = ~crc;
    while (n && ((uintptr_t)p & 7)) {
        c = (c >> 8) ^ table[0][(c ^ *p++) & 0xff];
        n--;
    }
    while (n >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);  // little-endian hosts only (checked in checkpoint.c)
        memcpy(&hi, p + 4, 4);
        lo ^= c;
        c = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^
            table[4][lo >> 24] ^ table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
            table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) c = (c >> 8) ^ table[0][(c ^ *p++) & 0xff];
    return ~c;
}

#ifdef CRC32C_X86
__attribute__((target("sse4.2"))) uint32_t crc32c_update_sse42(uint32_t crc, const void *data,
                                                               size_t n) {
    const uint8_t *p = data;
    uint32_t c = ~crc;
    while (n && ((uintptr_t)p & 7)) {
        c = _mm_crc32_u8(c, *p++);
        n--;
    }
#if defined(__x86_64__)
    uint64_t c64 = c;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c64 = _mm_crc32_u64(c64, v);
        p += 8;
        n -= 8;
    }
    c = (uint32_t)c64;
#endif
    while (n >= 4) {
        uint32_t v;
        memcpy(&v, p, 4);
        c = _mm_crc32_u32(c, v);
        p += 4;
        n -= 4;
    }
    while (n--) c = _mm_crc32_u8(c, *p++);
    return ~c;
}

bool crc32c_have_sse42(void) { return cpu_has(CPU_SSE42); }
#else
uint32_t crc32c_update_sse42(uint32_t crc, const void *data, size_t n) {
    return crc32c_update_table(crc, data, n);
}
bool crc32c_have_sse42(void) { return false; }
#endif

uint32_t crc32c_update(uint32_t crc, const void *data, size_t n) {
    // Racing first calls both store the same answer.
    static atomic_int have = -1;
    int h = atomic_load_explicit(&have, memory_order_relaxed);
    if (h < 0) atomic_store_explicit(&have, h = crc32c_have_sse42(), memory_order_relaxed);
    return h ? crc32c_update_sse42(crc, data, n) : crc32c_update_table(crc, data, n);
}
