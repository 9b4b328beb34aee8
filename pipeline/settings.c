/* settings.c: the "settings" JSON of features and classifier files (see
 * settings.h), built and read with json-c. */
#include "pipeline/settings.h"

#include <json-c/json.h>
#include <string.h>

#include "pipeline/log.h"

struct bn_settings {
    json_object *obj; /* the object being built */
};

static void *need(void *p, int line) {
    if (!p) bn_fatal_at(__FILE__, line, NULL, "out of memory building the settings JSON");
    return p;
}

bn_settings *bn_settings_new(void) {
    bn_settings *s = mallocCheck(sizeof *s);
    s->obj = need(json_object_new_object(), __LINE__);
    return s;
}

/* Length of the valid UTF-8 sequence starting at p (1 to 4), or 0 when the
 * bytes there are not one (a stray continuation byte, an overlong form, a
 * surrogate, a code point past U+10FFFF, or a sequence cut short). */
static size_t utf8_len(const unsigned char *p) {
    unsigned char c = p[0];
    if (c < 0x80) return 1;
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
    } else
        return 0;
    if (p[1] < lo || p[1] > hi) return 0;
    for (size_t k = 2; k < n; k++)
        if (p[k] < 0x80 || p[k] > 0xbf) return 0;
    return n;
}

char *bn_utf8_clean(const char *text) {
    const unsigned char *p = (const unsigned char *)(text ? text : "");
    size_t len = strlen((const char *)p);
    char *out = mallocCheck(3 * len + 1); /* a bad byte becomes 3 bytes */
    size_t k = 0;
    while (*p) {
        size_t n = utf8_len(p);
        if (n) {
            memcpy(out + k, p, n);
            k += n;
            p += n;
        } else {
            memcpy(out + k, "\xef\xbf\xbd", 3);
            k += 3;
            p++;
        }
    }
    out[k] = 0;
    return out;
}

void bn_settings_str(bn_settings *s, const char *key, const char *val) {
    char *clean = bn_utf8_clean(val);
    json_object_object_add(s->obj, key, need(json_object_new_string(clean), __LINE__));
    free(clean);
}

void bn_settings_int(bn_settings *s, const char *key, long long val) {
    json_object_object_add(s->obj, key, need(json_object_new_int64(val), __LINE__));
}

void bn_settings_double(bn_settings *s, const char *key, double val) {
    json_object_object_add(s->obj, key, need(json_object_new_double(val), __LINE__));
}

void bn_settings_bool(bn_settings *s, const char *key, int val) {
    json_object_object_add(s->obj, key, need(json_object_new_boolean(val != 0), __LINE__));
}

char *bn_settings_finish(bn_settings *s) {
    const char *txt = json_object_to_json_string_ext(s->obj, JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
    char *out = strdupCheck(need((void *)txt, __LINE__));
    json_object_put(s->obj);
    free(s);
    return out;
}

int bn_settings_get_double(const char *json, const char *key, double *val) {
    if (!json) return -1;
    json_object *root = json_tokener_parse(json), *v = NULL;
    int rc = -1;
    if (root && json_object_is_type(root, json_type_object) && json_object_object_get_ex(root, key, &v) &&
        (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int))) {
        *val = json_object_get_double(v);
        rc = 0;
    }
    json_object_put(root);
    return rc;
}
