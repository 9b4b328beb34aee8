/* plot.c: charts drawn with Cairo into a recording surface, written as SVG
 * and PNG from the same drawing (plot.h). */
#include "pipeline/plot.h"

#include <cairo-svg.h>
#include <cairo.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FONT "DejaVu Sans"
#define DESC_LEN 8192

struct bn_fig {
    cairo_surface_t *rec; /* the recording every output replays */
    cairo_t *cr;          /* drawing into rec */
    double w, h;          /* size in points */
    char *title;          /* the figure's title (owned) */
    char desc[DESC_LEN];  /* axes and series, for the SVG's <desc> */
};

/* Tableau 10: distinct, colour-blind tolerant, readable on white. */
static const double palette[10][3] = {
    {0.306, 0.475, 0.655}, {0.949, 0.557, 0.169}, {0.349, 0.631, 0.310}, {0.882, 0.341, 0.349},
    {0.690, 0.478, 0.631}, {0.463, 0.718, 0.698}, {0.929, 0.788, 0.282}, {1.000, 0.616, 0.655},
    {0.612, 0.459, 0.373}, {0.729, 0.690, 0.675},
};

static void put_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void put_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Copy s into out (len bytes) as valid UTF-8: a byte that does not start a
 * well-formed sequence becomes '?' (Cairo refuses invalid text, and file names
 * and class names need not be UTF-8). Returns out. */
static char *utf8_clean(const char *s, char *out, size_t len) {
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p && o + 5 < len) {
        int n = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : (*p >> 3) == 30 ? 4 : 0;
        int ok = n > 0;
        for (int k = 1; ok && k < n; k++) ok = (p[k] & 0xC0) == 0x80;
        if (ok && n == 2 && *p < 0xC2) ok = 0; /* overlong */
        if (!ok) {
            out[o++] = '?';
            p++;
            continue;
        }
        for (int k = 0; k < n; k++) out[o++] = (char)p[k];
        p += n;
    }
    out[o] = 0;
    return out;
}

static void desc_add(bn_fig *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void desc_add(bn_fig *f, const char *fmt, ...) {
    size_t used = strlen(f->desc);
    if (used + 1 >= sizeof f->desc) return;
    char raw[DESC_LEN], clean[DESC_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    snprintf(f->desc + used, sizeof f->desc - used, "%s", utf8_clean(raw, clean, sizeof clean));
}

bn_fig *bn_fig_new(double w, double h, const char *title) {
    bn_fig *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    cairo_rectangle_t ext = {0, 0, w, h};
    f->rec = cairo_recording_surface_create(CAIRO_CONTENT_COLOR_ALPHA, &ext);
    f->cr = cairo_create(f->rec);
    char clean[1024];
    f->title = strdup(utf8_clean(title ? title : "", clean, sizeof clean));
    f->w = w;
    f->h = h;
    if (cairo_status(f->cr) != CAIRO_STATUS_SUCCESS || !f->title) {
        bn_fig_free(f);
        return NULL;
    }
    cairo_set_source_rgb(f->cr, 1, 1, 1);
    cairo_paint(f->cr);
    cairo_select_font_face(f->cr, FONT, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
    cairo_set_font_size(f->cr, 16);
    cairo_text_extents_t te;
    cairo_text_extents(f->cr, f->title, &te);
    cairo_set_source_rgb(f->cr, 0.1, 0.1, 0.1);
    cairo_move_to(f->cr, (w - te.x_advance) / 2, 24);
    cairo_show_text(f->cr, f->title);
    return f;
}

void bn_fig_free(bn_fig *f) {
    if (!f) return;
    if (f->cr) cairo_destroy(f->cr);
    if (f->rec) cairo_surface_destroy(f->rec);
    free(f->title);
    free(f);
}

const char *bn_fig_title(const bn_fig *f) { return f->title; }

/* ------------------------------------------------------------ output */

typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} membuf;

static cairo_status_t mem_write(void *closure, const unsigned char *data, unsigned int len) {
    membuf *m = closure;
    if (m->n + len + 1 > m->cap) {
        size_t cap = m->cap ? m->cap : 65536;
        while (cap < m->n + len + 1) cap *= 2;
        char *np = realloc(m->p, cap);
        if (!np) {
            m->oom = 1;
            return CAIRO_STATUS_WRITE_ERROR;
        }
        m->p = np;
        m->cap = cap;
    }
    memcpy(m->p + m->n, data, len);
    m->n += len;
    m->p[m->n] = 0;
    return CAIRO_STATUS_SUCCESS;
}

/* Append s to m with XML escapes. */
static void mem_xml(membuf *m, const char *s) {
    for (; *s; s++) {
        const char *e = NULL;
        switch (*s) {
        case '<': e = "&lt;"; break;
        case '>': e = "&gt;"; break;
        case '&': e = "&amp;"; break;
        case '"': e = "&quot;"; break;
        default: break;
        }
        if (e) mem_write(m, (const unsigned char *)e, (unsigned)strlen(e));
        else if ((unsigned char)*s >= 0x20 || *s == '\n' || *s == '\t') mem_write(m, (const unsigned char *)s, 1);
    }
}

int bn_fig_svg_mem(bn_fig *f, char **out, size_t *len, char *err, size_t errlen) {
    membuf raw = {0};
    cairo_surface_t *svg = cairo_svg_surface_create_for_stream(mem_write, &raw, f->w, f->h);
    cairo_t *cr = cairo_create(svg);
    cairo_set_source_surface(cr, f->rec, 0, 0);
    cairo_paint(cr);
    cairo_status_t st = cairo_status(cr);
    cairo_destroy(cr);
    cairo_surface_finish(svg);
    if (st == CAIRO_STATUS_SUCCESS) st = cairo_surface_status(svg);
    cairo_surface_destroy(svg);
    if (st != CAIRO_STATUS_SUCCESS || raw.oom || !raw.p) {
        put_err(err, errlen, "cannot draw the figure \"%s\" as SVG: %s", f->title,
                raw.oom ? "out of memory" : cairo_status_to_string(st));
        free(raw.p);
        return -1;
    }
    /* <title> and <desc> right after the opening <svg ...> tag. */
    char *open = strstr(raw.p, "<svg");
    char *gt = open ? strchr(open, '>') : NULL;
    if (!gt) {
        put_err(err, errlen, "Cairo wrote an SVG without an <svg> element for \"%s\"", f->title);
        free(raw.p);
        return -1;
    }
    membuf m = {0};
    mem_write(&m, (const unsigned char *)raw.p, (unsigned)(gt + 1 - raw.p));
    mem_write(&m, (const unsigned char *)"\n<title>", 8);
    mem_xml(&m, f->title);
    mem_write(&m, (const unsigned char *)"</title>\n<desc>", 15);
    mem_xml(&m, f->desc);
    mem_write(&m, (const unsigned char *)"</desc>", 7);
    mem_write(&m, (const unsigned char *)gt + 1, (unsigned)strlen(gt + 1));
    free(raw.p);
    if (m.oom || !m.p) {
        free(m.p);
        put_err(err, errlen, "out of memory writing the figure \"%s\"", f->title);
        return -1;
    }
    *out = m.p;
    *len = m.n;
    return 0;
}

int bn_fig_write_svg(bn_fig *f, const char *path, char *err, size_t errlen) {
    char *svg = NULL;
    size_t n = 0;
    if (bn_fig_svg_mem(f, &svg, &n, err, errlen)) return -1;
    FILE *fp = fopen(path, "w");
    int ok = fp && fwrite(svg, 1, n, fp) == n;
    if (fp && fclose(fp) != 0) ok = 0;
    free(svg);
    if (!ok) {
        put_err(err, errlen, "%s: cannot write the SVG figure: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int bn_fig_write_png(bn_fig *f, const char *path, char *err, size_t errlen) {
    cairo_surface_t *img = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, (int)ceil(f->w), (int)ceil(f->h));
    cairo_t *cr = cairo_create(img);
    cairo_set_source_surface(cr, f->rec, 0, 0);
    cairo_paint(cr);
    cairo_status_t st = cairo_status(cr);
    cairo_destroy(cr);
    if (st == CAIRO_STATUS_SUCCESS) st = cairo_surface_write_to_png(img, path);
    cairo_surface_destroy(img);
    if (st != CAIRO_STATUS_SUCCESS) {
        put_err(err, errlen, "%s: cannot write the PNG figure: %s", path, cairo_status_to_string(st));
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ drawing helpers */

static void color(cairo_t *cr, int i) {
    const double *c = palette[((i % 10) + 10) % 10];
    cairo_set_source_rgb(cr, c[0], c[1], c[2]);
}

/* Text at (x, y): ax = 0 left, 0.5 centre, 1 right of x; ay likewise
 * (0 top, 0.5 middle, 1 baseline-ish bottom); angle in radians. */
static void text(cairo_t *cr, double x, double y, double size, double ax, double ay, int bold, double angle,
                 const char *raw) {
    char buf[1024];
    const char *s = utf8_clean(raw, buf, sizeof buf);
    cairo_save(cr);
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
    cairo_text_extents_t te;
    cairo_text_extents(cr, s, &te);
    cairo_translate(cr, x, y);
    cairo_rotate(cr, angle);
    cairo_move_to(cr, -ax * te.x_advance, -ay * size * 0.72 + size * 0.72);
    cairo_show_text(cr, s);
    cairo_restore(cr);
}

static double text_w(cairo_t *cr, double size, const char *raw) {
    char buf[1024];
    const char *s = utf8_clean(raw, buf, sizeof buf);
    cairo_save(cr);
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
    cairo_text_extents_t te;
    cairo_text_extents(cr, s, &te);
    cairo_restore(cr);
    return te.x_advance;
}

/* s cut with "..." to fit w points at size (into buf). */
static const char *fit(cairo_t *cr, double size, const char *s, double w, char *buf, size_t len) {
    if (text_w(cr, size, s) <= w) return s;
    size_t n = strlen(s);
    if (n >= len) n = len - 4;
    while (n > 0) {
        size_t k = n;
        while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80) k--; /* not inside a UTF-8 character */
        snprintf(buf, len, "%.*s...", (int)k, s);
        if (text_w(cr, size, buf) <= w) return buf;
        n = k - 1;
    }
    return "...";
}

/* A "nice" tick step for a range split into about k parts. */
static double nice_step(double range, int k) {
    if (!(range > 0)) return 1;
    double raw = range / k, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

static void fmt_tick(char *buf, size_t len, double v, double step) {
    double a = fabs(v);
    if (a >= 1e6 || (a > 0 && a < 1e-3)) snprintf(buf, len, "%.3g", v);
    else if (step >= 1) snprintf(buf, len, "%.0f", v);
    else if (step >= 0.1) snprintf(buf, len, "%.1f", v);
    else if (step >= 0.01) snprintf(buf, len, "%.2f", v);
    else snprintf(buf, len, "%.3f", v);
}

/* A plot area: the rect less its margins, and its data ranges. */
typedef struct {
    double x, y, w, h;       /* the inner plot area, points */
    double x0, x1, y0, y1;   /* data ranges */
} area;

static double ax_x(const area *a, double v) { return a->x + (a->x1 > a->x0 ? (v - a->x0) / (a->x1 - a->x0) : 0.5) * a->w; }
static double ax_y(const area *a, double v) { return a->y + a->h - (a->y1 > a->y0 ? (v - a->y0) / (a->y1 - a->y0) : 0) * a->h; }

/* The y axis: grid lines, ticks and its label, left of a. */
static void draw_y_axis(cairo_t *cr, const area *a, const char *label) {
    double step = nice_step(a->y1 - a->y0, 5);
    char buf[32];
    cairo_set_line_width(cr, 1);
    for (double v = ceil(a->y0 / step) * step; v <= a->y1 + step * 1e-9; v += step) {
        double y = ax_y(a, v);
        cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
        cairo_move_to(cr, a->x, y);
        cairo_line_to(cr, a->x + a->w, y);
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
        fmt_tick(buf, sizeof buf, fabs(v) < step * 1e-9 ? 0 : v, step);
        text(cr, a->x - 6, y, 11, 1, 0.5, 0, 0, buf);
    }
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    text(cr, a->x - 52, a->y + a->h / 2, 12, 0.5, 0.5, 0, -M_PI / 2, label);
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
    cairo_move_to(cr, a->x, a->y);
    cairo_line_to(cr, a->x, a->y + a->h);
    cairo_line_to(cr, a->x + a->w, a->y + a->h);
    cairo_stroke(cr);
}

/* A numeric x axis: ticks and label under a. */
static void draw_x_axis(cairo_t *cr, const area *a, const char *label) {
    double step = nice_step(a->x1 - a->x0, 6);
    char buf[32];
    cairo_set_line_width(cr, 1);
    for (double v = ceil(a->x0 / step) * step; v <= a->x1 + step * 1e-9; v += step) {
        double x = ax_x(a, v);
        cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
        cairo_move_to(cr, x, a->y + a->h);
        cairo_line_to(cr, x, a->y + a->h + 4);
        cairo_stroke(cr);
        fmt_tick(buf, sizeof buf, fabs(v) < step * 1e-9 ? 0 : v, step);
        text(cr, x, a->y + a->h + 7, 11, 0.5, 0, 0, 0, buf);
    }
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    text(cr, a->x + a->w / 2, a->y + a->h + 24, 12, 0.5, 0, 0, 0, label);
}

/* A legend row (wrapping) of swatches from (x, y) within width w; at most
 * max entries, then "and K more". Returns the height used. lines: draw a
 * line swatch instead of a box; colors[i] < 0 means dark grey. */
static double draw_legend(cairo_t *cr, double x, double y, double w, const char *const *names, const int *colors,
                          int n, int lines, int max) {
    double cx = x, cy = y, rowh = 16;
    char more[48], buf[96];
    int shown = n > max ? max : n;
    for (int i = 0; i <= shown; i++) {
        const char *name;
        if (i == shown) {
            if (n <= shown) break;
            snprintf(more, sizeof more, "and %d more", n - shown);
            name = more;
        } else {
            name = fit(cr, 11, names[i] ? names[i] : "", 220, buf, sizeof buf);
        }
        double tw = text_w(cr, 11, name) + (i == shown ? 0 : 20) + 14;
        if (cx + tw > x + w && cx > x) {
            cx = x;
            cy += rowh;
        }
        if (i < shown) {
            if (colors[i] < 0) cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
            else color(cr, colors[i]);
            if (lines) {
                cairo_set_line_width(cr, 3);
                cairo_move_to(cr, cx, cy + 6);
                cairo_line_to(cr, cx + 14, cy + 6);
                cairo_stroke(cr);
            } else {
                cairo_rectangle(cr, cx, cy, 12, 12);
                cairo_fill(cr);
            }
            cx += 18;
        }
        cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
        text(cr, cx, cy + 6, 11, 0, 0.5, 0, 0, name);
        cx += text_w(cr, 11, name) + 14;
    }
    return cy - y + rowh;
}

static void desc_series(bn_fig *f, const bn_series *s, int n) {
    desc_add(f, " Legend: ");
    for (int i = 0; i < n && i < 128; i++) desc_add(f, "%s%s", i ? ", " : "", s[i].name ? s[i].name : "");
    if (n > 128) desc_add(f, " and %d more", n - 128);
    desc_add(f, ".");
}

/* ------------------------------------------------------------ charts */

int bn_plot_stacked_bars(bn_fig *f, const char *xlabel, const char *ylabel, long long nbars,
                         const char *const *labels, const bn_series *s, int nseries, char *err, size_t errlen) {
    cairo_t *cr = f->cr;
    if (nbars < 1 || nseries < 1) {
        put_err(err, errlen, "figure \"%s\": no bars to draw", f->title);
        return -1;
    }
    desc_add(f, "Stacked bars. X axis: %s. Y axis: %s.", xlabel, ylabel);
    desc_series(f, s, nseries);
    const char *names[32];
    int cols[32];
    int nl = nseries < 32 ? nseries : 32;
    for (int k = 0; k < nl; k++) names[k] = s[k].name, cols[k] = k;
    double lh = draw_legend(cr, 80, 40, f->w - 100, names, cols, nl, 0, 32);
    area a = {80, 40 + lh + 12, f->w - 100, 0, 0, (double)nbars, 0, 0};
    a.h = f->h - a.y - 56;
    double top = 0;
    for (long long i = 0; i < nbars; i++) {
        double t = 0;
        for (int k = 0; k < nseries; k++)
            if (i < s[k].n && s[k].y[i] > 0) t += s[k].y[i];
        if (t > top) top = t;
    }
    a.y1 = top > 0 ? top * 1.05 : 1;
    draw_y_axis(cr, &a, ylabel);
    double bw = a.w / (double)nbars, gap = bw >= 4 ? bw * 0.15 : 0;
    for (long long i = 0; i < nbars; i++) {
        double base = 0;
        for (int k = 0; k < nseries; k++) {
            double v = i < s[k].n && s[k].y[i] > 0 ? s[k].y[i] : 0;
            if (v <= 0) continue;
            double y0 = ax_y(&a, base), y1 = ax_y(&a, base + v);
            color(cr, k);
            cairo_rectangle(cr, a.x + i * bw + gap, y1, bw - 2 * gap > 0.5 ? bw - 2 * gap : 0.5, y0 - y1);
            cairo_fill(cr);
            base += v;
        }
    }
    /* Category labels, thinned so that they never overlap. */
    double maxw = 0;
    for (long long i = 0; i < nbars; i++)
        if (labels && labels[i]) {
            double w = text_w(cr, 11, labels[i]);
            if (w > maxw) maxw = w;
        }
    long long every = (long long)ceil((maxw + 8) / (bw > 0 ? bw : 1));
    if (every < 1) every = 1;
    cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
    for (long long i = 0; labels && i < nbars; i += every)
        if (labels[i]) text(cr, a.x + (i + 0.5) * bw, a.y + a.h + 5, 11, 0.5, 0, 0, 0, labels[i]);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    text(cr, a.x + a.w / 2, a.y + a.h + 24, 12, 0.5, 0, 0, 0, xlabel);
    if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) {
        put_err(err, errlen, "figure \"%s\": %s", f->title, cairo_status_to_string(cairo_status(cr)));
        return -1;
    }
    return 0;
}

int bn_plot_lines(bn_fig *f, const double *rect, const char *panel_title, const char *xlabel, const char *ylabel,
                  const bn_series *s, int nseries, double ymin, double ymax, char *err, size_t errlen) {
    cairo_t *cr = f->cr;
    double r[4] = {0, 30, f->w, f->h - 30};
    if (rect) memcpy(r, rect, sizeof r);
    desc_add(f, " %s%sLines. X axis: %s. Y axis: %s.", panel_title ? panel_title : "", panel_title ? ": " : "",
             xlabel, ylabel);
    desc_series(f, s, nseries);
    double y = r[1] + 8;
    if (panel_title) {
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        text(cr, r[0] + r[2] / 2, y, 13, 0.5, 0, 1, 0, panel_title);
        y += 20;
    }
    const char *names[9] = {0};
    int cols[9] = {0}, nl = nseries < 9 ? nseries : 9, ci = 0;
    for (int k = 0; k < nl; k++) names[k] = s[k].name, cols[k] = s[k].width > 2 ? -1 : ci++;
    y += draw_legend(cr, r[0] + 80, y, r[2] - 100, names, cols, nseries, 1, 8) + 8;
    area a = {r[0] + 80, y, r[2] - 100, r[1] + r[3] - y - 52, 0, 0, 0, 0};
    int any = 0;
    double x0 = INFINITY, x1 = -INFINITY, y1 = -INFINITY;
    for (int k = 0; k < nseries; k++)
        for (long long i = 0; i < s[k].n; i++) {
            double xv = s[k].x ? s[k].x[i] : (double)i, yv = s[k].y[i];
            if (!isfinite(xv) || !isfinite(yv)) continue;
            any = 1;
            if (xv < x0) x0 = xv;
            if (xv > x1) x1 = xv;
            if (yv > y1) y1 = yv;
        }
    if (!any) {
        x0 = 0, x1 = 1, y1 = 1;
        bn_plot_note(f, a.x + a.w / 2, a.y + a.h / 2, 13, "no data");
    }
    a.x0 = x0 > 0 ? 0 : x0; /* times and steps: from 0 */
    a.x1 = x1 > a.x0 ? x1 : a.x0 + 1;
    a.y0 = isfinite(ymin) ? ymin : 0;
    a.y1 = isfinite(ymax) ? ymax : (y1 > 0 ? y1 * 1.08 : 1);
    draw_y_axis(cr, &a, ylabel);
    draw_x_axis(cr, &a, xlabel);
    cairo_save(cr);
    cairo_rectangle(cr, a.x, a.y - 2, a.w, a.h + 4);
    cairo_clip(cr);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    for (int pass = 0; pass < 2; pass++) {
        ci = 0;
        for (int k = 0; k < nseries; k++) {
            int thick = s[k].width > 2;
            int c = thick ? -1 : ci++;
            if (thick != pass) continue;
            if (c < 0) cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
            else color(cr, c);
            cairo_set_line_width(cr, s[k].width > 0 ? s[k].width : 1.5);
            int pen = 0;
            for (long long i = 0; i < s[k].n; i++) {
                double xv = s[k].x ? s[k].x[i] : (double)i, yv = s[k].y[i];
                if (!isfinite(xv) || !isfinite(yv)) {
                    pen = 0;
                    continue;
                }
                if (pen) cairo_line_to(cr, ax_x(&a, xv), ax_y(&a, yv));
                else cairo_move_to(cr, ax_x(&a, xv), ax_y(&a, yv));
                pen = 1;
            }
            if (s[k].n == 1 && pen) { /* a single point: a dot */
                cairo_stroke(cr);
                cairo_arc(cr, ax_x(&a, s[k].x ? s[k].x[0] : 0), ax_y(&a, s[k].y[0]), 3, 0, 2 * M_PI);
                cairo_fill(cr);
            } else {
                cairo_stroke(cr);
            }
        }
    }
    cairo_restore(cr);
    if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) {
        put_err(err, errlen, "figure \"%s\": %s", f->title, cairo_status_to_string(cairo_status(cr)));
        return -1;
    }
    return 0;
}

int bn_plot_hbars(bn_fig *f, const double *rect, const char *panel_title, const char *xlabel, long long n,
                  const char *const *labels, const double *values, const char *fmt, char *err, size_t errlen) {
    cairo_t *cr = f->cr;
    double r[4] = {0, 30, f->w, f->h - 30};
    if (rect) memcpy(r, rect, sizeof r);
    desc_add(f, " %s%sHorizontal bars. X axis: %s. Bars:", panel_title ? panel_title : "", panel_title ? ": " : "",
             xlabel);
    for (long long i = 0; i < n && i < 32; i++) desc_add(f, "%s %s", i ? "," : "", labels[i] ? labels[i] : "");
    desc_add(f, ".");
    double y = r[1] + 8;
    if (panel_title) {
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        text(cr, r[0] + r[2] / 2, y, 13, 0.5, 0, 1, 0, panel_title);
        y += 22;
    }
    if (n < 1) {
        bn_plot_note(f, r[0] + r[2] / 2, y + 30, 13, "nothing to show");
        return 0;
    }
    double lw = 0;
    for (long long i = 0; i < n; i++) {
        double w = text_w(cr, 11, labels[i] ? labels[i] : "");
        if (w > lw) lw = w;
    }
    if (lw > r[2] * 0.4) lw = r[2] * 0.4;
    area a = {r[0] + lw + 16, y, 0, r[1] + r[3] - y - 44, 0, 0, 0, 1};
    a.w = r[0] + r[2] - a.x - 70;
    double top = 0;
    for (long long i = 0; i < n; i++)
        if (isfinite(values[i]) && values[i] > top) top = values[i];
    a.x1 = top > 0 ? top * 1.02 : 1;
    double bh = a.h / (double)n;
    if (bh > 28) bh = 28;
    char buf[128], vb[64];
    for (long long i = 0; i < n; i++) {
        double yy = a.y + i * bh;
        double fs = bh * 0.7 < 11 ? bh * 0.7 : 11;
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        if (fs >= 5) text(cr, a.x - 6, yy + bh / 2, fs, 1, 0.5, 0, 0, fit(cr, fs, labels[i] ? labels[i] : "", lw, buf, sizeof buf));
        if (!isfinite(values[i])) {
            if (fs >= 5) text(cr, a.x + 4, yy + bh / 2, fs, 0, 0.5, 0, 0, "no value");
            continue;
        }
        color(cr, 0);
        cairo_rectangle(cr, a.x, yy + bh * 0.15, ax_x(&a, values[i]) - a.x, bh * 0.7);
        cairo_fill(cr);
        snprintf(vb, sizeof vb, fmt ? fmt : "%g", values[i]);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        if (fs >= 5) text(cr, ax_x(&a, values[i]) + 4, yy + bh / 2, fs, 0, 0.5, 0, 0, vb);
    }
    area ax = a;
    ax.h = n * bh;
    draw_x_axis(cr, &ax, xlabel);
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
    cairo_set_line_width(cr, 1);
    cairo_move_to(cr, a.x, a.y);
    cairo_line_to(cr, a.x, a.y + ax.h);
    cairo_line_to(cr, a.x + a.w, a.y + ax.h);
    cairo_stroke(cr);
    if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) {
        put_err(err, errlen, "figure \"%s\": %s", f->title, cairo_status_to_string(cairo_status(cr)));
        return -1;
    }
    return 0;
}

/* White to blue by share v in [0, 1]. */
static void heat(cairo_t *cr, double v) {
    if (!(v > 0)) v = 0;
    if (v > 1) v = 1;
    cairo_set_source_rgb(cr, 1 - v * (1 - 0.03), 1 - v * (1 - 0.19), 1 - v * (1 - 0.42));
}

int bn_plot_heatmap(bn_fig *f, const char *xlabel, const char *ylabel, int n, const char *const *labels,
                    const long long *m, char *err, size_t errlen) {
    cairo_t *cr = f->cr;
    if (n < 1) {
        put_err(err, errlen, "figure \"%s\": no classes", f->title);
        return -1;
    }
    desc_add(f, "Heat map of counts. X axis: %s. Y axis: %s. Colour: share of the row (true class), 0 to 100%%. "
                "Classes:", xlabel, ylabel);
    for (int i = 0; i < n && i < 32; i++) desc_add(f, "%s %s", i ? "," : "", labels[i] ? labels[i] : "");
    if (n > 32) desc_add(f, " and %d more", n - 32);
    desc_add(f, ".");
    /* Label size from the cell size; labels thinned below 7 points. */
    double lw_max = 0;
    for (int i = 0; i < n; i++) {
        double w = text_w(cr, 11, labels[i] ? labels[i] : "");
        if (w > lw_max) lw_max = w;
    }
    if (lw_max > 150) lw_max = 150;
    double left = 40 + lw_max + 10, top = 44, right = 90;
    double avail = f->w - left - right, availh = f->h - top - (40 + lw_max * 0.75);
    double cell = (avail < availh ? avail : availh) / n;
    double fs = cell * 0.8 < 11 ? cell * 0.8 : 11;
    int every = 1;
    if (fs < 7) {
        fs = 7;
        every = (int)ceil(9.0 / cell);
    }
    double gx = left, gy = top, gs = cell * n;
    long long *rows = calloc((size_t)n, sizeof *rows);
    if (!rows) {
        put_err(err, errlen, "figure \"%s\": out of memory", f->title);
        return -1;
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) rows[i] += m[(size_t)i * n + j];
    char buf[64], lb[96];
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            long long c = m[(size_t)i * n + j];
            double v = rows[i] > 0 ? (double)c / rows[i] : 0;
            heat(cr, v);
            cairo_rectangle(cr, gx + j * cell, gy + i * cell, cell, cell);
            cairo_fill(cr);
            if (cell >= 18) {
                snprintf(buf, sizeof buf, "%lld", c);
                double cfs = cell * 0.38 < 12 ? cell * 0.38 : 12;
                if (text_w(cr, cfs, buf) < cell - 2) {
                    if (v > 0.5) cairo_set_source_rgb(cr, 1, 1, 1);
                    else cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
                    text(cr, gx + (j + 0.5) * cell, gy + (i + 0.5) * cell, cfs, 0.5, 0.5, 0, 0, buf);
                }
            }
        }
    free(rows);
    cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, gx, gy, gs, gs);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    for (int i = 0; i < n; i += every) {
        const char *l = fit(cr, fs, labels[i] ? labels[i] : "", lw_max, lb, sizeof lb);
        text(cr, gx - 5, gy + (i + 0.5) * cell, fs, 1, 0.5, 0, 0, l);
        /* column labels slanted, reading down to the left; upright columns of text where cells are narrow */
        text(cr, gx + (i + 0.5) * cell, gy + gs + 5, fs, 1, 0.5, 0, cell * every >= 1.6 * fs ? -M_PI / 4 : -M_PI / 2, l);
    }
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    text(cr, 14, gy + gs / 2, 12, 0.5, 0.5, 0, -M_PI / 2, ylabel);
    text(cr, gx + gs / 2, f->h - 20, 12, 0.5, 0, 0, 0, xlabel);
    /* Colour bar. */
    double bx = gx + gs + 24, bh = gs < 240 ? gs : 240;
    for (int k = 0; k < 100; k++) {
        heat(cr, (99 - k) / 99.0);
        cairo_rectangle(cr, bx, gy + k * bh / 100, 14, bh / 100 + 0.5);
        cairo_fill(cr);
    }
    cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
    text(cr, bx + 18, gy, 10, 0, 0.5, 0, 0, "100%");
    text(cr, bx + 18, gy + bh / 2, 10, 0, 0.5, 0, 0, "50%");
    text(cr, bx + 18, gy + bh, 10, 0, 0.5, 0, 0, "0%");
    text(cr, bx + 7, gy + bh + 14, 10, 0.5, 0, 0, 0, "of row");
    if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) {
        put_err(err, errlen, "figure \"%s\": %s", f->title, cairo_status_to_string(cairo_status(cr)));
        return -1;
    }
    return 0;
}

void bn_plot_note(bn_fig *f, double x, double y, double size, const char *s) {
    cairo_set_source_rgb(f->cr, 0.35, 0.35, 0.35);
    text(f->cr, x, y, size, 0.5, 0.5, 0, 0, s);
    desc_add(f, " Note: %s.", s);
}

char *bn_base64(const unsigned char *p, size_t n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
    if (!out) return NULL;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        *o++ = tab[v >> 18], *o++ = tab[(v >> 12) & 63], *o++ = tab[(v >> 6) & 63], *o++ = tab[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0);
        *o++ = tab[v >> 18], *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = 0;
    return out;
}
