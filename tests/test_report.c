/* test_report.c: the arithmetic and drawing under bneck report and bneck
 * cost (io/runrec.h, pipeline/plot.h).
 *  - bn_run_cost against values worked by hand: the 2017 droplet (402 s on
 *    one node at 0.952 per hour, 3,670 images), two nodes, no price, a price
 *    of 0, no images;
 *  - the timeline samples at its interval, keeps at most BN_TL_MAX samples by
 *    dropping every other one and doubling the interval, and keeps the
 *    first and the forced last sample;
 *  - base64 against RFC 4648's test vectors;
 *  - every chart draws, and its SVG holds one <title> with the figure's title
 *    and a <desc> with the axis labels and series; a PNG is written;
 *    empty input is refused with a reason.
 */
#include "io/runrec.h"
#include "pipeline/plot.h"
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int near(double a, double b, double rel) { return fabs(a - b) <= rel * fabs(b); }

static void test_cost(void) {
    bn_run_summary s = {0};
    s.wall_s = 402, s.nodes = 1, s.images = 3670, s.price_per_node_hour = 0.952;
    bn_run_cost(&s);
    /* by hand: 402/3600 = 0.111667 node-hours; x 0.952 = 0.106307; /3.670 = 0.028966; 3670/0.106307 = 34523 */
    CHECK(near(s.node_hours, 0.1116667, 1e-6), "node-hours %.7f", s.node_hours);
    CHECK(near(s.cost, 0.1063067, 1e-6), "cost %.7f", s.cost);
    CHECK(near(s.cost_per_1000, 0.0289664, 1e-5), "per 1000 %.7f", s.cost_per_1000);
    CHECK(near(s.images_per_dollar, 34522.9, 1e-5), "images per dollar %.1f", s.images_per_dollar);
    /* two nodes pay twice: 251 s on 2 nodes at 0.900 = 0.139444 node-hours, 0.1255 */
    bn_run_summary t = {0};
    t.wall_s = 251, t.nodes = 2, t.images = 3670, t.price_per_node_hour = 0.9;
    bn_run_cost(&t);
    CHECK(near(t.node_hours, 0.1394444, 1e-6) && near(t.cost, 0.1255, 1e-6), "2 nodes: %.7f %.7f", t.node_hours, t.cost);
    bn_run_summary u = {0};
    u.wall_s = 100, u.nodes = 1, u.images = 10, u.price_per_node_hour = NAN;
    bn_run_cost(&u);
    CHECK(isnan(u.cost) && isnan(u.cost_per_1000) && isnan(u.images_per_dollar) && near(u.node_hours, 100 / 3600.0, 1e-12),
          "no price: cost %g", u.cost);
    bn_run_summary z = {0};
    z.wall_s = 100, z.nodes = 1, z.images = 10, z.price_per_node_hour = 0;
    bn_run_cost(&z);
    CHECK(z.cost == 0 && z.cost_per_1000 == 0 && isnan(z.images_per_dollar), "free: %g %g %g", z.cost, z.cost_per_1000,
          z.images_per_dollar);
    bn_run_summary e = {0};
    e.wall_s = 10, e.nodes = 1, e.images = 0, e.price_per_node_hour = 2;
    bn_run_cost(&e);
    CHECK(near(e.cost, 10 / 1800.0, 1e-12) && isnan(e.cost_per_1000), "no images: %g %g", e.cost, e.cost_per_1000);
}

static void test_timeline(void) {
    bn_timeline tl;
    bn_timeline_init(&tl, 100.0);
    CHECK(tl.n == 1 && tl.p[0].t_s == 0 && tl.p[0].done == 0, "start sample");
    bn_timeline_note(&tl, 100.5, 3, 0, 0); /* before the interval: no sample */
    CHECK(tl.n == 1, "sampled too early: %d", tl.n);
    bn_timeline_note(&tl, 101.0, 5, 1, 0);
    CHECK(tl.n == 2 && tl.p[1].done == 5 && tl.p[1].failed == 1, "sample at the interval: n %d", tl.n);
    for (int i = 2; i < 10 * BN_TL_MAX; i++) bn_timeline_note(&tl, 100.0 + i, i, 0, 0);
    CHECK(tl.n <= BN_TL_MAX && tl.n > BN_TL_MAX / 4, "kept %d samples", tl.n);
    CHECK(tl.interval >= 4 * BN_TL_INTERVAL, "interval %g after thinning", tl.interval);
    CHECK(tl.p[0].t_s == 0, "the first sample stays");
    int sorted = 1;
    for (int i = 1; i < tl.n; i++) sorted &= tl.p[i].t_s > tl.p[i - 1].t_s && tl.p[i].done >= tl.p[i - 1].done;
    CHECK(sorted, "samples by time, counts rising");
    bn_timeline_note(&tl, 100.0 + 10 * BN_TL_MAX + 0.01, 777, 0, 1);
    CHECK(tl.p[tl.n - 1].done == 777, "the forced last sample");
    bn_timeline_free(&tl);
    bn_timeline_note(&tl, 1, 1, 1, 1); /* after free: nothing, no crash */
    CHECK(tl.n == 0, "freed");
}

static void test_base64(void) {
    const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *want[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char *b = bn_base64((const unsigned char *)in[i], strlen(in[i]));
        CHECK(b && !strcmp(b, want[i]), "base64(%s) = %s", in[i], b ? b : "NULL");
        free(b);
    }
}

static int has(const char *svg, const char *s) { return strstr(svg, s) != NULL; }

static void test_plots(void) {
    char err[512] = "";
    double y1[3] = {1, 2, 3}, y2[3] = {0.5, 0, 1}, x[3] = {0, 1, 2};
    const char *lab[3] = {"r0", "r1", "r2"};
    bn_series s[2] = {{"read & decode", y1, NULL, 3, 0}, {"idle <wait>", y2, NULL, 3, 0}};
    bn_fig *f = bn_fig_new(600, 300, "Time per rank \"A\"");
    CHECK(f && bn_plot_stacked_bars(f, "MPI rank", "seconds", 3, lab, s, 2, err, sizeof err) == 0, "bars: %s", err);
    char *svg = NULL;
    size_t n = 0;
    CHECK(bn_fig_svg_mem(f, &svg, &n, err, sizeof err) == 0 && svg && n == strlen(svg), "svg: %s", err);
    if (svg) {
        CHECK(has(svg, "<title>Time per rank &quot;A&quot;</title>"), "escaped title");
        CHECK(has(svg, "X axis: MPI rank") && has(svg, "Y axis: seconds"), "axes in desc");
        CHECK(has(svg, "read &amp; decode") && has(svg, "idle &lt;wait&gt;"), "escaped series");
        CHECK(has(svg, "<svg") && has(svg, "</svg>"), "an svg element");
        char *t1 = strstr(svg, "<title>");
        CHECK(t1 && !strstr(t1 + 1, "<title>"), "one title");
    }
    free(svg);
    char png[] = "/tmp/bneck_test_plot_XXXXXX";
    int fd = mkstemp(png);
    CHECK(fd >= 0 && bn_fig_write_png(f, png, err, sizeof err) == 0, "png: %s", err);
    FILE *fp = fopen(png, "rb");
    unsigned char sig[8] = {0};
    CHECK(fp && fread(sig, 1, 8, fp) == 8 && sig[1] == 'P' && sig[2] == 'N' && sig[3] == 'G', "png signature");
    if (fp) fclose(fp);
    if (fd >= 0) close(fd), unlink(png);
    CHECK(bn_plot_stacked_bars(f, "x", "y", 0, lab, s, 2, err, sizeof err) == -1 && strstr(err, "no bars"), "empty bars: %s",
          err);
    bn_fig_free(f);

    f = bn_fig_new(600, 600, "Lines");
    bn_series l[2] = {{"rank 0", y1, x, 3, 1}, {"all ranks", y2, x, 3, 3}};
    double top[4] = {0, 30, 600, 280};
    CHECK(bn_plot_lines(f, top, "Panel", "seconds since start", "images per second", l, 2, NAN, NAN, err, sizeof err) == 0,
          "lines: %s", err);
    double m[4] = {5, 1, 0, 7};
    const char *cl[2] = {"daisy", "roses"};
    CHECK(bn_plot_hbars(f, NULL, NULL, "images", 2, cl, y1, "%.0f", err, sizeof err) == 0, "hbars: %s", err);
    CHECK(bn_fig_svg_mem(f, &svg, &n, err, sizeof err) == 0, "svg 2: %s", err);
    if (svg) CHECK(has(svg, "X axis: seconds since start") && has(svg, "Y axis: images per second") && has(svg, "Panel"),
                   "line desc");
    free(svg);
    bn_fig_free(f);

    f = bn_fig_new(700, 600, "Confusion");
    long long mm[4] = {5, 1, 0, 7};
    (void)m;
    CHECK(bn_plot_heatmap(f, "predicted class", "true class", 2, cl, mm, err, sizeof err) == 0, "heatmap: %s", err);
    CHECK(bn_fig_svg_mem(f, &svg, &n, err, sizeof err) == 0 && has(svg, "predicted class") && has(svg, "daisy"),
          "heatmap desc");
    free(svg);
    bn_fig_free(f);
}

int main(void) {
    test_cost();
    test_timeline();
    test_base64();
    test_plots();
    return t_done("test_report");
}
