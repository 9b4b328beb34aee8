/* tables.h: text tables shared by the commands that print them. */
#ifndef BN_TABLES_H
#define BN_TABLES_H

#include "io/store.h"

#include <stdio.h>

/* The per-rank timing table of an extract run (size rows of t), then its
 * totals, load imbalance and wall time (wall seconds of the whole run). The
 * format is stable: tests and scripts read its columns. */
void bn_print_extract_timing(FILE *fp, const bn_rank_timing *t, int size, double wall);

#endif
