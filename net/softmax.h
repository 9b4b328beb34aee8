/* softmax.h: the final layer that train learns and classify applies.
 *
 * A linear layer from the 2048-wide bottleneck to C classes, then softmax:
 *     z[c] = b[c] + sum_i x[i] * Wt[c][i],   p = softmax(z).
 * Wt is kept class-major (C, dim) so each logit is one contiguous dot
 * product. (classifier.h5 stores the transpose W (dim, C), as retrain.py's
 * final_weights.)
 *
 * Exact gradients. The training gradient dWt = sum_s e_s x_s^T / B is summed
 * in exact arithmetic, so its value does not depend on how samples are spread
 * over ranks or in which order MPI adds the partial sums:
 *  - each training feature column i is rounded once to a grid q[i] (a power
 *    of two) chosen so that |x| <= 2^xbits q[i]; with xbits = 24 this is the
 *    precision float32 has at the column's largest magnitude;
 *  - the per-sample error signal p - onehot(y), in [-1, 1], is rounded to a
 *    multiple of 2^-gbits;
 *  - every product is then an integer times q[i] 2^-gbits below 2^(xbits +
 *    gbits), and any sum of B of them stays at most 2^53 in magnitude, so double precision
 *    adds them exactly, in any order (BLAS, MPI_Allreduce alike).
 * bn_sm_bits chooses xbits and gbits for a batch size.
 */
#ifndef BN_SOFTMAX_H
#define BN_SOFTMAX_H

#include <stddef.h>

/* Logits of one row: z[c] = b[c] + sum_i x[i] Wt[c*dim + i]. The summation
 * order is fixed (32 interleaved partial sums added in a fixed tree), so the
 * result depends only on the inputs, never on the caller, the batch or the
 * CPU's vector width. x is the row as doubles (see bn_sm_widen). */
void bn_sm_logits(const double *Wt, const double *b, int C, int dim, const double *x, double *z);

/* Logits of m rows X (m, dim) into Z (m, C): each row exactly as
 * bn_sm_logits computes it alone (faster: rows share weight loads). */
void bn_sm_logits_batch(const double *Wt, const double *b, int C, int dim, const double *X, int m, double *Z);

/* Copy a float row into doubles (exact). */
void bn_sm_widen(const float *x, int dim, double *out);

/* Ask the CPU to start loading a row that will be needed soon (training
 * rows are drawn at random, so the hardware cannot guess them). */
void bn_sm_prefetch(const float *x, int dim);

/* Turn logits z (C) into probabilities in place. Returns log(sum(exp(z))),
 * from which the cross entropy of class y is lse - z[y] (taken before the call). */
double bn_sm_softmax(double *z, int C);

/* Index of the largest of v[0..C) (the first on ties, as argmax). */
int bn_sm_argmax(const double *v, int C);

/* Bits of the exact gradient for a global batch of B samples: *xbits for the
 * feature grid, *gbits for the error signal, with B 2^(xbits+gbits) <= 2^53.
 * xbits is 24 while gbits can stay >= 16. B must be in [1, 2^24]. */
void bn_sm_bits(long long B, int *xbits, int *gbits);

/* The grid of each feature column from its largest magnitude colmax[i]
 * (over every training row, on every rank): q[i] = 2^(e - xbits) where
 * colmax < 2^e; 1 for a column of zeros. */
void bn_sm_grid(const float *colmax, int dim, int xbits, double *q);

/* Round rows x (n, dim) to the grid in place: x = rint(x / q) q. */
void bn_sm_round_rows(float *x, size_t n, int dim, const double *q);

/* One training sample: probabilities p (C) from its logits, and the error
 * signal e[c] = rint((p[c] - [c == y]) 2^gbits), an integer held in a
 * double. x is the row as doubles. *loss gets the cross entropy -log p[y], *correct 1 when the
 * argmax is y. */
void bn_sm_sample(const double *Wt, const double *b, int C, int dim, const double *x, int y, int gbits, double *p,
                  double *e, double *loss, int *correct);

/* The second half of bn_sm_sample, from logits p (C) already computed,
 * turned into probabilities in place. */
void bn_sm_error(double *p, int C, int y, int gbits, double *e, double *loss, int *correct);

/* Accumulate the exact gradient of m samples: dWt (C, dim) += E^T X and
 * db (C) += sum of E rows, where E (m, C) are error signals from
 * bn_sm_sample and X (m, dim) the (rounded) rows as doubles. The sums are
 * exact (see above); scale by 2^-gbits / B afterwards. */
void bn_sm_accumulate(int m, int C, int dim, const double *E, const double *X, double *dWt, double *db);

#endif
