/* plot.h: the figures of "bneck report" and "bneck cost", drawn with Cairo.
 *
 * A figure is drawn once, into a Cairo recording surface, and then written
 * as SVG, PNG or both from that one drawing. Every chart has a title, axis
 * labels with units and a legend. Each SVG also carries a <title> and a
 * <desc> naming the title, the axes and the series (Cairo writes text as
 * glyph outlines, so these are what a screen reader, a search or a test
 * finds). Charts stay readable with many bars (ranks), many series and many
 * classes: tick labels are thinned, legends are cut with "and K more", and
 * the counts of a heat map are printed only where a cell is large enough.
 *
 * Every function that can fail returns 0 or -1 with a reason in err.
 */
#ifndef BN_PLOT_H
#define BN_PLOT_H

#include <stddef.h>

typedef struct bn_fig bn_fig;

/* A new empty figure w x h points (1 point = 1 CSS pixel = 1 PNG pixel),
 * white background. title and the axis text are recorded for <desc>.
 * Returns NULL only when Cairo cannot allocate (reported by the caller). */
bn_fig *bn_fig_new(double w, double h, const char *title);
void bn_fig_free(bn_fig *f);

/* Write the figure: SVG (valid XML with <title> and <desc>), PNG. */
int bn_fig_write_svg(bn_fig *f, const char *path, char *err, size_t errlen);
int bn_fig_write_png(bn_fig *f, const char *path, char *err, size_t errlen);
/* The SVG text in memory (malloc'd, *len bytes, NUL-terminated), for an HTML page. */
int bn_fig_svg_mem(bn_fig *f, char **out, size_t *len, char *err, size_t errlen);
/* The title given to bn_fig_new. */
const char *bn_fig_title(const bn_fig *f);

/* One named series of values, with an optional colour (NULL: the palette's next). */
typedef struct {
    const char *name;  /* legend text */
    const double *y;   /* values (n) */
    const double *x;   /* line charts: x of each value (n); NULL for bars */
    long long n;       /* values */
    double width;      /* line charts: stroke width in points (0: 1.5) */
} bn_series;

/* Stacked vertical bars: nbars bars (labels[i] under bar i, thinned to fit),
 * each the sum of nseries segments s[k].y[i] (>= 0), coloured per series,
 * with a legend of the series. ylabel names the unit. */
int bn_plot_stacked_bars(bn_fig *f, const char *xlabel, const char *ylabel, long long nbars,
                         const char *const *labels, const bn_series *s, int nseries, char *err, size_t errlen);

/* Lines, x against y, in one panel of the figure: rect = {x, y, w, h} in
 * points (NULL: the whole figure). Series with width > 2 are drawn last, on
 * top. The legend lists at most 8 series, then "and K more". ymin/ymax: the
 * y range (NaN for both: from the data, from 0). */
int bn_plot_lines(bn_fig *f, const double *rect, const char *panel_title, const char *xlabel, const char *ylabel,
                  const bn_series *s, int nseries, double ymin, double ymax, char *err, size_t errlen);

/* Horizontal bars, one per label, value printed at the end of each bar
 * (with fmt, e.g. "%.0f"), in the panel rect (NULL: whole figure). */
int bn_plot_hbars(bn_fig *f, const double *rect, const char *panel_title, const char *xlabel, long long n,
                  const char *const *labels, const double *values, const char *fmt, char *err, size_t errlen);

/* Heat map of an n x n count matrix m (row-major, row = true class, column =
 * predicted): colour = the count's share of its row, counts printed where a
 * cell is large enough, class labels on both axes (thinned), a colour bar. */
int bn_plot_heatmap(bn_fig *f, const char *xlabel, const char *ylabel, int n, const char *const *labels,
                    const long long *m, char *err, size_t errlen);

/* A line of text in the figure (a note, e.g. "no data"), centred at x, y. */
void bn_plot_note(bn_fig *f, double x, double y, double size, const char *text);

/* Base64 of n bytes (malloc'd, NUL-terminated), for data: URLs. */
char *bn_base64(const unsigned char *p, size_t n);

#endif
