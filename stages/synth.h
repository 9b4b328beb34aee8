/* synth.h: synthetic, natural-looking labelled images for tests and demos.
 *
 * Each class has its own colour, object shape and surface texture, so classes
 * stay separable even for a linear classifier on features of a randomly
 * initialised CNN. Each image adds random jitter (position, scale, rotation,
 * brightness, a smooth natural-coloured background with blotches and soft
 * out-of-focus blobs, vignetting, pixel noise, sometimes a smaller distractor
 * object of another class), so images are not duplicates and compress like
 * photos. Rendering is deterministic: the same (cls, nclasses, seed, w, h)
 * always gives the same pixels (within one build; floating-point library
 * differences between platforms may change a few pixel values).
 */
#ifndef BN_SYNTH_H
#define BN_SYNTH_H

#include <stddef.h>

/* Render image `seed` of class cls (0 <= cls < nclasses, nclasses >= 1) into rgb.
 * rgb: (h, w, 3) uint8 RGB, row-major, caller-allocated; w, h >= 1.
 * nclasses only chooses the class of the optional distractor object; the look
 * of class cls does not depend on it. */
void bn_synth_image(int cls, int nclasses, unsigned long long seed, int w, int h, unsigned char *rgb);

/* Folder-safe name of class cls: "daisy", "dandelion", "roses", "sunflowers",
 * "tulips" for classes 0..4, then "class_05", "class_06", ... Writes it into
 * buf (len bytes, truncated if short) and returns buf. */
const char *bn_synth_class_name(int cls, char *buf, size_t len);

#endif
