/* test_settings.c: the settings JSON module (pipeline/settings.c): UTF-8
 * cleaning of every kind of bad sequence, escaping, and reading numbers back. */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/settings.h"
#include "testutil.h"

#define FFFD "\xef\xbf\xbd"

/* bn_utf8_clean(in) must equal want. */
static void clean_is(const char *in, const char *want) {
    char *got = bn_utf8_clean(in);
    CHECK(strcmp(got, want) == 0, "clean(%s) gave '%s', want '%s'", in, got, want);
    free(got);
}

int main(void) {
    /* Valid UTF-8 stays as it is: ASCII, 2, 3 and 4 byte forms, the edges. */
    clean_is("plain/path.jpg", "plain/path.jpg");
    clean_is("caf\xc3\xa9/\xe6\x97\xa5/\xf0\x9f\x8c\xb8", "caf\xc3\xa9/\xe6\x97\xa5/\xf0\x9f\x8c\xb8");
    clean_is("\xc2\x80 \xdf\xbf \xe0\xa0\x80 \xef\xbf\xbf \xf0\x90\x80\x80 \xf4\x8f\xbf\xbf",
             "\xc2\x80 \xdf\xbf \xe0\xa0\x80 \xef\xbf\xbf \xf0\x90\x80\x80 \xf4\x8f\xbf\xbf");
    clean_is("", "");
    clean_is(NULL, "");
    /* Each bad byte becomes one U+FFFD. */
    clean_is("a\xff" "b", "a" FFFD "b");                 /* never valid */
    clean_is("\x80x", FFFD "x");                         /* stray continuation */
    clean_is("\xc0\xaf", FFFD FFFD);                     /* overlong '/' */
    clean_is("\xe0\x80\xaf", FFFD FFFD FFFD);            /* overlong, 3 bytes */
    clean_is("\xed\xa0\x80", FFFD FFFD FFFD);            /* a surrogate */
    clean_is("\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD);   /* past U+10FFFF */
    clean_is("\xf5\x80", FFFD FFFD);
    clean_is("end\xe6\x97", "end" FFFD FFFD);            /* cut short at the end */
    clean_is("\xe6\x97x", FFFD FFFD "x");                /* cut short by ASCII */
    clean_is("\xc3\xa9\xc3", "\xc3\xa9" FFFD);

    /* Built text parses, and gives every value back. */
    const char *odd = "a\"b\\c\td\ne\x01\x1f/\xc3\xa9\xff";
    bn_settings *s = bn_settings_new();
    bn_settings_str(s, "path", odd);
    bn_settings_str(s, "none", NULL);
    bn_settings_int(s, "n", 1234567890123LL);
    bn_settings_double(s, "x", 12.5);
    bn_settings_bool(s, "yes", 1);
    char *txt = bn_settings_finish(s);
    json_object *root = json_tokener_parse(txt), *v = NULL;
    CHECK(root && json_object_is_type(root, json_type_object), "settings do not parse: %s", txt);
    if (root) {
        CHECK(json_object_object_get_ex(root, "path", &v) &&
                  !strcmp(json_object_get_string(v), "a\"b\\c\td\ne\x01\x1f/\xc3\xa9" FFFD),
              "path came back as '%s'", v ? json_object_get_string(v) : "(none)");
        CHECK(json_object_object_get_ex(root, "none", &v) && !strcmp(json_object_get_string(v), ""), "NULL is not \"\"");
        CHECK(json_object_object_get_ex(root, "n", &v) && json_object_get_int64(v) == 1234567890123LL, "int64 lost");
        CHECK(json_object_object_get_ex(root, "yes", &v) && json_object_get_boolean(v), "bool lost");
        json_object_put(root);
    }
    /* No raw control character in the text: JSON forbids them inside strings. */
    for (const char *p = txt; *p; p++) CHECK((unsigned char)*p >= 0x20, "raw control byte 0x%02x in %s", *p, txt);

    /* Reading numbers back. */
    double d = -1;
    CHECK(bn_settings_get_double(txt, "x", &d) == 0 && d == 12.5, "x read as %g", d);
    CHECK(bn_settings_get_double(txt, "n", &d) == 0 && d == 1234567890123.0, "an integer reads as a double");
    d = -1;
    CHECK(bn_settings_get_double(txt, "path", &d) == -1 && d == -1, "a text value read as a number");
    CHECK(bn_settings_get_double(txt, "missing", &d) == -1 && d == -1, "a missing key read");
    CHECK(bn_settings_get_double("{not json", "x", &d) == -1 && d == -1, "bad JSON read");
    CHECK(bn_settings_get_double("[1, 2]", "x", &d) == -1, "an array read as an object");
    CHECK(bn_settings_get_double(NULL, "x", &d) == -1, "NULL text read");
    /* A key's name inside a string value is not the key. */
    CHECK(bn_settings_get_double("{\"p\": \"\\\"x\\\": 7\", \"x\": 3}", "x", &d) == 0 && d == 3, "read %g, want 3", d);
    free(txt);
    return t_done("test_settings");
}
