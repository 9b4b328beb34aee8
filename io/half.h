/* half.h: IEEE 754 binary16 ("float16") features: conversion to and from
 * float32, and the HDF5 type that stores them (docs/format.md).
 *
 * A features file may hold its rows as float16 (extract --feature-dtype
 * float16), which halves the file. Rows are converted here, not by HDF5:
 * HDF5's own float conversion is generic bit-field code, slow on millions
 * of rows, and HDF5 1.10 has no predefined 16-bit float type.
 */
#ifndef BN_HALF_H
#define BN_HALF_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

/* x rounded to the nearest float16 (ties to even); overflow gives
 * infinity, NaN stays NaN. */
uint16_t bn_f32_to_f16(float x);

/* The float16 h as a float (exact). */
float bn_f16_to_f32(uint16_t h);

/* n values each way. */
void bn_f32_to_f16_n(const float *src, uint16_t *dst, size_t n);
void bn_f16_to_f32_n(const uint16_t *src, float *dst, size_t n);

/* A new HDF5 type for little-endian IEEE float16 (close it with H5Tclose),
 * or a negative id on failure. h5py and NumPy read it as float16. */
hid_t bn_h5_f16_type(void);

/* The names of the two feature dtypes, as the file's attribute holds them. */
#define BN_DTYPE_F32 "float32"
#define BN_DTYPE_F16 "float16"

#endif
