/* buildinfo.h: what this binary was built with (the configure summary). */
#ifndef BN_BUILDINFO_H
#define BN_BUILDINFO_H
#include <stdio.h>
/* Print the build table, the same facts as configure's summary. */
void bn_build_info(FILE *f);
#endif
