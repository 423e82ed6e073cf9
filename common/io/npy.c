#include "io/npy.h"

#include <stdio.h>
#include <string.h>

#include "core/atomic_file.h"
#include "core/check.h"

int npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape) {
    CATLIP_ASSERT(ndim >= 1 && ndim <= 4);
    char header[256];
    int n = snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    size_t count = 1;
    for (int d = 0; d < ndim; d++) {
        n += snprintf(header + n, sizeof header - (size_t)n, "%lld,%s", (long long)shape[d],
                      d + 1 < ndim ? " " : "");
        count *= (size_t)shape[d];
    }
    n += snprintf(header + n, sizeof header - (size_t)n, "), }");
    // magic (6) + version (2) + header length (2) + header + '\n' is a multiple of 64.
    int total = 10 + n + 1, padded = (total + 63) / 64 * 64;
    while (n < padded - 10 - 1) header[n++] = ' ';
    header[n++] = '\n';
    unsigned char prefix[10] = {
        0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(n & 0xff), (unsigned char)(n >> 8)};
    struct atomic_file f;
    if (atomic_file_open(&f, path, NULL, 0644) != 0) return -1;
    atomic_file_write(&f, prefix, 10);
    atomic_file_write(&f, header, (size_t)n);
    atomic_file_write(&f, data, count * sizeof(float));
    return atomic_file_commit(&f);
}
