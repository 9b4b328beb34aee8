/* synth.c: see synth.h.
 *
 * An image is rendered in one pass over the pixels. Each pixel gets:
 *   background  = a coarse grid of natural colours (a vertical sky/foliage/
 *                 earth gradient with blotches), smoothly interpolated, plus a
 *                 two finer, offset grids of brightness noise (foliage-like
 *                 detail; two scales hide the grid);
 *   blobs       = a few soft, out-of-focus discs blended over it;
 *   objects     = an optional distractor (another class, smaller), then the
 *                 class object: signed-distance shape, anti-aliased edge,
 *                 class texture mixing an accent colour in, simple shading;
 *   finish      = vignetting, brightness and white-balance jitter, pixel noise.
 * All randomness comes from a splitmix64 stream seeded from (cls, seed).
 */
#include "stages/synth.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define PI_F 3.14159265358979f

/* ------------------------------------------------------------------ randomness */

/* splitmix64: advance *s and return the next 64 random bits. */
static uint64_t sm64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform float in [0, 1). */
static float rnd01(uint64_t *s) { return (float)(sm64(s) >> 40) * (1.0f / 16777216.0f); }

/* Uniform float in [a, b). */
static float rnd_in(uint64_t *s, float a, float b) { return a + (b - a) * rnd01(s); }

/* Uniform integer in [0, n), n >= 1. */
static int rnd_int(uint64_t *s, int n) { return (int)((sm64(s) >> 33) % (uint64_t)n); }

/* A cheap stateless 32-bit hash (for per-pixel texture grain). */
static uint32_t hash32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7FEB352Du;
    x ^= x >> 15;
    x *= 0x846CA68Bu;
    x ^= x >> 16;
    return x;
}

/* ------------------------------------------------------------------ helpers */

static float clampf(float x, float lo, float hi) { return x < lo ? lo : (x > hi ? hi : x); }
/* Max and min without libm calls (inputs are never NaN here). */
static float maxf(float a, float b) { return a > b ? a : b; }
static float minf(float a, float b) { return a < b ? a : b; }

/* Cubic smoothstep of t in [0, 1] (grid interpolation without visible seams). */
static float smooth01(float t) { return t * t * (3.0f - 2.0f * t); }

/* HSV (each 0..1, hue wraps) to RGB in 0..255. */
static void hsv_to_rgb(float hue, float s, float v, float out[3]) {
    hue -= floorf(hue);
    float h6 = hue * 6.0f;
    int i = (int)h6;
    float f = h6 - (float)i;
    float p = v * (1.0f - s), q = v * (1.0f - s * f), t = v * (1.0f - s * (1.0f - f));
    float r, g, b;
    switch (i % 6) {
    case 0: r = v; g = t; b = p; break;
    case 1: r = q; g = v; b = p; break;
    case 2: r = p; g = v; b = t; break;
    case 3: r = p; g = q; b = v; break;
    case 4: r = t; g = p; b = v; break;
    default: r = v; g = p; b = q; break;
    }
    out[0] = 255.0f * r;
    out[1] = 255.0f * g;
    out[2] = 255.0f * b;
}

/* ------------------------------------------------------------------ classes */

/* Object shapes (signed-distance functions below). */
enum { SH_DISC, SH_SQUARE, SH_TRIANGLE, SH_RING, SH_STAR, SH_CROSS, SH_FLOWER, SH_HEXAGON, SH_N };
/* Surface textures. */
enum { TX_STRIPES, TX_CHECKER, TX_DOTS, TX_GRAIN, TX_RINGS, TX_WAVES, TX_N };

/* The appearance shared by every image of one class. */
typedef struct {
    float base[3];      /* object colour, 0..255 RGB */
    float acc[3];       /* accent colour the texture mixes in, 0..255 RGB */
    int shape;          /* SH_* */
    int texture;        /* TX_* */
    float tex_angle;    /* texture direction in the object's frame, radians */
    float tex_period;   /* texture period, in units of the object radius */
    float tex_amount;   /* how much accent the texture mixes in at most, 0..1 */
} class_look;

/* Hand-made looks for the first classes (named after flower_photos' classes). */
typedef struct {
    const char *name;        /* folder name */
    float h, s, v;           /* base colour, HSV */
    float ah, as, av;        /* accent colour, HSV */
    int shape, texture;      /* SH_*, TX_* */
} named_look;

static const named_look NAMED[] = {
    {"daisy",      0.13f, 0.06f, 0.96f,  0.14f, 0.85f, 0.90f, SH_FLOWER,   TX_DOTS},
    {"dandelion",  0.15f, 0.90f, 0.95f,  0.11f, 0.95f, 0.60f, SH_STAR,     TX_GRAIN},
    {"roses",      0.98f, 0.85f, 0.80f,  0.96f, 0.90f, 0.35f, SH_DISC,     TX_RINGS},
    {"sunflowers", 0.09f, 0.95f, 0.98f,  0.07f, 0.80f, 0.30f, SH_RING,     TX_STRIPES},
    {"tulips",     0.82f, 0.60f, 0.85f,  0.88f, 0.45f, 0.98f, SH_TRIANGLE, TX_WAVES},
};
#define N_NAMED ((int)(sizeof NAMED / sizeof NAMED[0]))

/* Fractional part (low-discrepancy sequences for class parameters). */
static float fracf(double x) { return (float)(x - floor(x)); }

/* The look of class cls: the table for the named classes, then shape, texture
 * and hue cycled on incommensurate sequences so that nearby classes differ in
 * all three. */
static void class_look_of(int cls, class_look *L) {
    float h, s, v, ah, as, av;
    if (cls >= 0 && cls < N_NAMED) {
        const named_look *n = &NAMED[cls];
        h = n->h; s = n->s; v = n->v;
        ah = n->ah; as = n->as; av = n->av;
        L->shape = n->shape;
        L->texture = n->texture;
    } else {
        h = fracf(0.05 + cls * 0.6180339887);
        s = 0.55f + 0.40f * fracf(cls * 0.7548776662);
        v = 0.65f + 0.33f * fracf(cls * 0.5698402910);
        /* Accent: a neighbouring hue, darker or paler by class. */
        ah = h + (float)((cls % 3) - 1) * 0.06f;
        as = (cls & 1) ? s * 0.5f : s;
        av = (cls & 2) ? v * 0.40f : fminf(1.0f, v * 1.25f);
        L->shape = cls % SH_N;
        L->texture = (cls + cls / SH_N) % TX_N;
    }
    hsv_to_rgb(h, s, v, L->base);
    hsv_to_rgb(ah, as, av, L->acc);
    L->tex_angle = fracf(0.3 + cls * 0.4142135624) * PI_F;
    L->tex_period = 0.16f + 0.18f * fracf(0.2 + cls * 0.3183098862);
    L->tex_amount = 0.55f + 0.3f * fracf(cls * 0.2360679775);
}

const char *bn_synth_class_name(int cls, char *buf, size_t len) {
    if (!buf || len == 0) return "";
    if (cls >= 0 && cls < N_NAMED)
        snprintf(buf, len, "%s", NAMED[cls].name);
    else
        snprintf(buf, len, "class_%02d", cls);
    return buf;
}

/* ------------------------------------------------------------------ shapes */

/* atan2 to within about 1e-5 radians, without a libm call (hot in star shapes). */
static float fast_atan2f(float y, float x) {
    float ax = fabsf(x), ay = fabsf(y);
    float a = minf(ax, ay) / (maxf(ax, ay) + 1e-30f);
    float s = a * a;
    float r = ((-0.0464964749f * s + 0.15931422f) * s - 0.327622764f) * s * a + a;
    if (ay > ax) r = 1.57079637f - r;
    if (x < 0.0f) r = 3.14159274f - r;
    return y < 0.0f ? -r : r;
}

/* Unit edge normals of a triangle with a flat bottom edge (y grows downwards)
 * and of a hexagon. */
static const float TRI_N[3][2] = {{0.0f, 1.0f}, {-0.8660254f, -0.5f}, {0.8660254f, -0.5f}};
static const float HEX_N[6][2] = {{1.0f, 0.0f}, {0.5f, 0.8660254f}, {-0.5f, 0.8660254f},
                                  {-1.0f, 0.0f}, {-0.5f, -0.8660254f}, {0.5f, -0.8660254f}};

/* Signed distance (negative inside) from (u, v) to the shape, in units of the
 * object radius; shapes fit roughly in the unit circle. Polar shapes (star,
 * flower) return a scaled approximation, which is all anti-aliasing needs. */
static float shape_sdf(int shape, float u, float v) {
    switch (shape) {
    case SH_DISC:
        return sqrtf(u * u + v * v) - 0.95f;
    case SH_SQUARE:
        return maxf(fabsf(u), fabsf(v)) - 0.80f;
    case SH_TRIANGLE: { /* circumradius 1.2, apothem 0.6 */
        float d = -1e9f;
        for (int i = 0; i < 3; i++) d = maxf(d, u * TRI_N[i][0] + v * TRI_N[i][1]);
        return d - 0.6f;
    }
    case SH_RING:
        return fabsf(sqrtf(u * u + v * v) - 0.70f) - 0.28f;
    case SH_STAR: { /* 5 points, one pointing up */
        float r = sqrtf(u * u + v * v);
        float p = (fast_atan2f(v, u) + 0.5f * PI_F) * (5.0f / (2.0f * PI_F));
        p -= floorf(p);
        float tri = fabsf(2.0f * p - 1.0f); /* 1 at a point, 0 between points */
        return (r - (0.42f + 0.63f * tri)) * 0.6f;
    }
    case SH_CROSS: {
        float au = fabsf(u), av = fabsf(v);
        return minf(maxf(au - 0.95f, av - 0.30f), maxf(au - 0.30f, av - 0.95f));
    }
    case SH_FLOWER: { /* 6 rounded petals */
        float r = sqrtf(u * u + v * v);
        /* |cos(3 theta)| from cos(3t) = 4 cos^3 t - 3 cos t, cos t = u / r. */
        float ct = u / (r + 1e-20f);
        float c = fabsf(ct * (4.0f * ct * ct - 3.0f));
        return (r - (0.50f + 0.48f * c)) * 0.7f;
    }
    default: { /* SH_HEXAGON, circumradius 1, apothem 0.866 */
        float d = -1e9f;
        for (int i = 0; i < 6; i++) d = maxf(d, u * HEX_N[i][0] + v * HEX_N[i][1]);
        return d - 0.866f;
    }
    }
}

/* ------------------------------------------------------------------ objects */

/* One object placed in the image. */
typedef struct {
    class_look look;    /* class appearance */
    float cx, cy;       /* centre, pixels */
    float r;            /* radius, pixels */
    float inv_r;        /* 1 / r */
    float rc, rs;       /* cos and sin of the rotation */
    float sx;           /* aspect: local u is divided by sx, v multiplied */
    float tc, ts;       /* texture direction (cos, sin of tex_angle) */
    float inv_period;   /* 1 / tex_period */
    float bright;       /* brightness factor of this object */
    uint32_t grain;     /* seed of the grain texture */
    float reach2;       /* squared distance (radius units) beyond which alpha is 0 */
    int x0, x1, y0, y1; /* bounding box, inclusive, clipped to the image */
} object;

/* Place an object of class cls at (cx, cy) with radius r, jittering the rest. */
static void object_init(object *o, int cls, float cx, float cy, float r, int w, int h, uint64_t *rng) {
    class_look_of(cls, &o->look);
    o->cx = cx;
    o->cy = cy;
    o->r = r;
    o->inv_r = 1.0f / r;
    float rot = rnd_in(rng, -0.45f, 0.45f);
    o->rc = cosf(rot);
    o->rs = sinf(rot);
    o->sx = rnd_in(rng, 0.85f, 1.15f);
    o->tc = cosf(o->look.tex_angle);
    o->ts = sinf(o->look.tex_angle);
    o->inv_period = 1.0f / (o->look.tex_period * rnd_in(rng, 0.9f, 1.1f));
    o->bright = rnd_in(rng, 0.85f, 1.12f);
    o->grain = (uint32_t)sm64(rng);
    /* Every shape lies within 1.2 radii and its anti-aliased edge within 2
     * more pixels; the aspect stretch scales distances by at most max(sx, 1/sx). */
    float stretch = fmaxf(o->sx, 1.0f / o->sx);
    float reach = (1.25f + 2.0f / r) * stretch;
    o->reach2 = reach * reach;
    float ext = reach * r + 2.0f;
    o->x0 = (int)fmaxf(0.0f, floorf(cx - ext));
    o->x1 = (int)fminf((float)(w - 1), ceilf(cx + ext));
    o->y0 = (int)fmaxf(0.0f, floorf(cy - ext));
    o->y1 = (int)fminf((float)(h - 1), ceilf(cy + ext));
}

/* Texture value in [0, 1] at local coordinates (u, v) (object radius units). */
static float texture_at(const object *o, float u, float v, int x, int y) {
    float a = (u * o->tc + v * o->ts) * o->inv_period;  /* along the texture direction */
    float b = (-u * o->ts + v * o->tc) * o->inv_period; /* across it */
    switch (o->look.texture) {
    case TX_STRIPES:
        return 0.5f + 0.5f * sinf(2.0f * PI_F * a);
    case TX_CHECKER:
        return clampf(0.5f + 2.5f * sinf(PI_F * a) * sinf(PI_F * b), 0.0f, 1.0f);
    case TX_DOTS: {
        float fa = a - floorf(a + 0.5f), fb = b - floorf(b + 0.5f);
        return clampf((0.30f - sqrtf(fa * fa + fb * fb)) * 10.0f, 0.0f, 1.0f);
    }
    case TX_GRAIN: { /* speckle over a slow swirl */
        uint32_t hv = hash32((uint32_t)x * 0x9E3779B1u ^ (uint32_t)y * 0x85EBCA77u ^ o->grain);
        float n = (float)(hv >> 8) * (1.0f / 16777216.0f);
        return 0.65f * n + 0.35f * (0.5f + 0.5f * sinf(2.0f * PI_F * 0.5f * (a + b)));
    }
    case TX_RINGS:
        return 0.5f + 0.5f * sinf(2.0f * PI_F * sqrtf(u * u + v * v) * o->inv_period);
    default: /* TX_WAVES */
        return 0.5f + 0.5f * sinf(2.0f * PI_F * (a + 0.35f * sinf(PI_F * b)));
    }
}

/* Blend object o over colour c at pixel (x, y) (already inside its box). */
static void object_shade(const object *o, int x, int y, float c[3]) {
    float dx = ((float)x + 0.5f - o->cx) * o->inv_r;
    float dy = ((float)y + 0.5f - o->cy) * o->inv_r;
    float rr = dx * dx + dy * dy;
    if (rr > o->reach2) return; /* outside the shape and its edge */
    /* Into the object's frame: rotate, then stretch. */
    float u = (dx * o->rc + dy * o->rs) / o->sx;
    float v = (-dx * o->rs + dy * o->rc) * o->sx;
    float d = shape_sdf(o->look.shape, u, v);
    float alpha = clampf(0.5f - d * o->r, 0.0f, 1.0f);
    if (alpha <= 0.0f) return;
    float t = texture_at(o, u, v, x, y) * o->look.tex_amount;
    /* Rounded look, lit from the top left. */
    float shade = o->bright * (1.08f - 0.25f * minf(rr, 1.4f) - 0.10f * (dx + dy));
    for (int k = 0; k < 3; k++) {
        float col = (o->look.base[k] + t * (o->look.acc[k] - o->look.base[k])) * shade;
        c[k] += alpha * (col - c[k]);
    }
}

/* ------------------------------------------------------------------ background */

/* Natural colours for the background, sRGB 0..255. */
static const float SKY_TOP[][3] = {
    {120, 170, 220}, {180, 205, 230}, {55, 100, 40}, {25, 55, 25}, {125, 125, 120}, {190, 150, 120},
};
static const float GROUND[][3] = {
    {95, 140, 55}, {105, 80, 55}, {55, 100, 40}, {185, 165, 125}, {30, 60, 28}, {80, 90, 70},
};
#define N_TOP ((int)(sizeof SKY_TOP / sizeof SKY_TOP[0]))
#define N_GROUND ((int)(sizeof GROUND / sizeof GROUND[0]))

#define CG 6   /* coarse grid nodes per side (colour blotches) */
#define FG 48  /* fine grid nodes per side, at most (brightness detail) */

/* A square grid of brightness offsets, smoothly interpolated. */
typedef struct {
    float v[FG][FG]; /* offsets at the nodes, 0..255 scale */
    float scale;     /* grid units per pixel */
    float off;       /* grid offset of pixel 0, in grid units (0..1) */
    float row[FG];   /* the current pixel row, interpolated along y */
} lum_grid;

/* Fill g with offsets in [-amp, amp]; cells is the number of cells across the
 * longer image side (<= FG - 2). */
static void lum_grid_init(lum_grid *g, int cells, float amp, int w, int h, uint64_t *rng) {
    for (int j = 0; j < FG; j++)
        for (int i = 0; i < FG; i++) g->v[j][i] = rnd_in(rng, -amp, amp);
    g->scale = (float)cells / (float)(w > h ? w : h);
    g->off = rnd01(rng);
}

/* Interpolate along y for pixel row y (call once per row). */
static void lum_grid_row(lum_grid *g, int y) {
    float gy = (float)y * g->scale + g->off;
    int j = (int)gy;
    if (j > FG - 2) j = FG - 2;
    float t = smooth01(clampf(gy - (float)j, 0.0f, 1.0f));
    for (int i = 0; i < FG; i++) g->row[i] = g->v[j][i] + t * (g->v[j + 1][i] - g->v[j][i]);
}

/* The offset at column x of the current row. */
static float lum_grid_at(const lum_grid *g, int x) {
    float gx = (float)x * g->scale + g->off;
    int i = (int)gx;
    if (i > FG - 2) i = FG - 2;
    float t = smooth01(clampf(gx - (float)i, 0.0f, 1.0f));
    return g->row[i] + t * (g->row[i + 1] - g->row[i]);
}

/* A soft out-of-focus disc. */
typedef struct {
    float cx, cy, r;    /* centre and radius, pixels */
    float inv_r2;       /* 1 / r^2 */
    float col[3];       /* colour */
    float alpha;        /* opacity at the centre */
    int x0, x1, y0, y1; /* bounding box, clipped */
} blob;

#define MAX_BLOBS 7

/* ------------------------------------------------------------------ render */

void bn_synth_image(int cls, int nclasses, unsigned long long seed, int w, int h, unsigned char *rgb) {
    if (!rgb || w <= 0 || h <= 0) return;
    if (nclasses < 1) nclasses = 1;
    uint64_t rng = seed ^ (0xD1B54A32D192ED03ull * (uint64_t)(cls + 1));
    (void)sm64(&rng);

    /* Background: coarse colour grid = vertical gradient from a "top" colour to
     * a "ground" colour, each corner jittered, plus blotches. */
    float top[3], bot[3];
    const float *tp = SKY_TOP[rnd_int(&rng, N_TOP)], *gp = GROUND[rnd_int(&rng, N_GROUND)];
    for (int k = 0; k < 3; k++) {
        top[k] = tp[k] * rnd_in(&rng, 0.85f, 1.15f);
        bot[k] = gp[k] * rnd_in(&rng, 0.85f, 1.15f);
    }
    float horizon = rnd_in(&rng, 0.25f, 0.75f); /* where the gradient is half-way */
    float tilt = rnd_in(&rng, -0.25f, 0.25f);   /* horizon slope */
    float blotch = rnd_in(&rng, 12.0f, 34.0f);  /* blotch strength */
    float coarse[CG][CG][3];
    for (int j = 0; j < CG; j++)
        for (int i = 0; i < CG; i++) {
            float fy = (float)j / (CG - 1), fx = (float)i / (CG - 1);
            float g = clampf((fy - horizon - tilt * (fx - 0.5f)) * 2.5f + 0.5f, 0.0f, 1.0f);
            float lum = rnd_in(&rng, -blotch, blotch);
            for (int k = 0; k < 3; k++)
                coarse[j][i][k] = top[k] + g * (bot[k] - top[k]) + lum + rnd_in(&rng, -8.0f, 8.0f);
        }
    lum_grid fine1, fine2; /* two scales of detail */
    lum_grid_init(&fine1, 26, rnd_in(&rng, 3.0f, 9.0f), w, h, &rng);
    lum_grid_init(&fine2, 45, rnd_in(&rng, 2.0f, 7.0f), w, h, &rng);

    /* Blobs. */
    blob blobs[MAX_BLOBS];
    int nblobs = rnd_int(&rng, MAX_BLOBS + 1);
    float mind = (float)(w < h ? w : h);
    for (int b = 0; b < nblobs; b++) {
        blob *B = &blobs[b];
        B->cx = rnd_in(&rng, 0.0f, (float)w);
        B->cy = rnd_in(&rng, 0.0f, (float)h);
        B->r = mind * rnd_in(&rng, 0.04f, 0.14f) + 1.0f;
        B->inv_r2 = 1.0f / (B->r * B->r);
        int light = rnd01(&rng) < 0.5f;
        const float *pc = light ? SKY_TOP[rnd_int(&rng, N_TOP)] : GROUND[rnd_int(&rng, N_GROUND)];
        float gain = light ? rnd_in(&rng, 1.0f, 1.35f) : rnd_in(&rng, 0.6f, 1.1f);
        for (int k = 0; k < 3; k++) B->col[k] = pc[k] * gain;
        B->alpha = rnd_in(&rng, 0.25f, 0.6f);
        B->x0 = (int)fmaxf(0.0f, B->cx - B->r);
        B->x1 = (int)fminf((float)(w - 1), B->cx + B->r);
        B->y0 = (int)fmaxf(0.0f, B->cy - B->r);
        B->y1 = (int)fminf((float)(h - 1), B->cy + B->r);
    }

    /* Objects: maybe a distractor of another class, then the class object. */
    object objs[2];
    int nobj = 0;
    float R = mind * rnd_in(&rng, 0.26f, 0.40f);
    float cx = (float)w * rnd_in(&rng, 0.32f, 0.68f), cy = (float)h * rnd_in(&rng, 0.32f, 0.68f);
    if (nclasses > 1 && rnd01(&rng) < 0.35f) {
        int other = (cls + 1 + rnd_int(&rng, nclasses - 1)) % nclasses;
        float r2 = R * rnd_in(&rng, 0.28f, 0.42f);
        float ox = 0.0f, oy = 0.0f;
        for (int tries = 0; tries < 8; tries++) { /* prefer a spot clear of the main object */
            ox = rnd_in(&rng, r2, (float)w - r2);
            oy = rnd_in(&rng, r2, (float)h - r2);
            if (hypotf(ox - cx, oy - cy) > R + r2) break;
        }
        object_init(&objs[nobj++], other, ox, oy, r2, w, h, &rng);
    }
    object_init(&objs[nobj++], cls, cx, cy, R, w, h, &rng);

    /* Finish: vignetting, brightness, white balance, noise. */
    float vig = rnd_in(&rng, 0.08f, 0.30f);
    float gain = rnd_in(&rng, 0.82f, 1.12f);
    float wb[3];
    for (int k = 0; k < 3; k++) wb[k] = gain * rnd_in(&rng, 0.95f, 1.05f);
    float inv_hw = 2.0f / (float)w, inv_hh = 2.0f / (float)h;
    float cscale_x = (float)(CG - 1) / (float)(w > 1 ? w - 1 : 1);
    float cscale_y = (float)(CG - 1) / (float)(h > 1 ? h - 1 : 1);

    for (int y = 0; y < h; y++) {
        /* Interpolate both grids along y once per row. */
        float fy = (float)y * cscale_y;
        int jy = (int)fy;
        if (jy > CG - 2) jy = CG - 2;
        float ty = smooth01(fy - (float)jy);
        float crow[CG][3];
        for (int i = 0; i < CG; i++)
            for (int k = 0; k < 3; k++)
                crow[i][k] = coarse[jy][i][k] + ty * (coarse[jy + 1][i][k] - coarse[jy][i][k]);
        lum_grid_row(&fine1, y);
        lum_grid_row(&fine2, y);
        float vy = ((float)y + 0.5f) * inv_hh - 1.0f;

        /* Blobs and objects that touch this row. */
        const blob *rb[MAX_BLOBS];
        int nrb = 0;
        for (int b = 0; b < nblobs; b++)
            if (y >= blobs[b].y0 && y <= blobs[b].y1) rb[nrb++] = &blobs[b];
        const object *ro[2];
        int nro = 0;
        for (int o = 0; o < nobj; o++)
            if (y >= objs[o].y0 && y <= objs[o].y1) ro[nro++] = &objs[o];

        unsigned char *row = rgb + (size_t)y * (size_t)w * 3;
        uint64_t noise = 0; /* random bits for the pixel noise */
        int nbits = 0;      /* 6-bit noise samples left in noise */
        for (int x = 0; x < w; x++) {
            float c[3];
            float fx = (float)x * cscale_x;
            int ix = (int)fx;
            if (ix > CG - 2) ix = CG - 2;
            float tx = smooth01(fx - (float)ix);
            float lum = lum_grid_at(&fine1, x) + lum_grid_at(&fine2, x);
            for (int k = 0; k < 3; k++) c[k] = crow[ix][k] + tx * (crow[ix + 1][k] - crow[ix][k]) + lum;

            for (int b = 0; b < nrb; b++) {
                const blob *B = rb[b];
                if (x < B->x0 || x > B->x1) continue;
                float ddx = (float)x - B->cx, ddy = (float)y - B->cy;
                float q = 1.0f - (ddx * ddx + ddy * ddy) * B->inv_r2;
                if (q <= 0.0f) continue;
                float a = B->alpha * q * q;
                for (int k = 0; k < 3; k++) c[k] += a * (B->col[k] - c[k]);
            }
            for (int o = 0; o < nro; o++)
                if (x >= ro[o]->x0 && x <= ro[o]->x1) object_shade(ro[o], x, y, c);

            float vx = ((float)x + 0.5f) * inv_hw - 1.0f;
            float vf = 1.0f - vig * (vx * vx + vy * vy);
            for (int k = 0; k < 3; k++) {
                if (nbits == 0) { noise = sm64(&rng); nbits = 10; }
                nbits--;
                /* Triangular noise in [-7, 7] from two 3-bit fields. */
                int n = (int)(noise & 7) + (int)((noise >> 3) & 7) - 7;
                noise >>= 6;
                float val = c[k] * vf * wb[k] + (float)n + 0.5f;
                row[3 * x + k] = (unsigned char)clampf(val, 0.0f, 255.0f);
            }
        }
    }
}
