// CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected 0x82F63B78), the checksum of iSCSI,
// ext4 and the checkpoint footer. Uses the SSE4.2 crc32 instruction when the CPU has it
// (checked once at run time), a slicing-by-8 table otherwise; both give the same bits.
//
// Incremental, with the usual pre- and post-inversion folded in, so a checksum can be
// carried across pieces:
//
//     uint32_t crc = 0;
//     crc = crc32c_update(crc, part1, n1);
//     crc = crc32c_update(crc, part2, n2);    // == crc32c_update(0, part1||part2, n1+n2)
//
// crc32c_update(0, "123456789", 9) == 0xE3069283.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

uint32_t crc32c_update(uint32_t crc, const void *data, size_t n);

// The two implementations behind crc32c_update, exposed so tests hold both to the same
// vectors. crc32c_update_sse42 may only be called when crc32c_have_sse42() is true.
uint32_t crc32c_update_table(uint32_t crc, const void *data, size_t n);
uint32_t crc32c_update_sse42(uint32_t crc, const void *data, size_t n);
bool crc32c_have_sse42(void);
