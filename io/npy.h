/* npy.h: write float32 arrays in NumPy's .npy format (version 1.0). */
#ifndef BN_NPY_H
#define BN_NPY_H
#include <stddef.h>
/* Write data (C order, little-endian float32) with the given shape.
 * Returns 0, or -1 with a reason naming the file in err. */
int bn_npy_write(const char *path, const float *data, int ndim, const size_t *shape, char *err, size_t errlen);
#endif
