/* settings.h: the "settings" attribute of the files bneck writes.
 *
 * Features and classifier files record the command a run was given as one
 * JSON object in their "settings" attribute (docs/format.md). This module
 * owns that text: writers build it here, readers ask it for a value, so no
 * stage pastes JSON by hand or searches it with strstr.
 *
 * Strings (paths above all) may hold any bytes. Quotes, backslashes and
 * control characters are escaped by json-c; a byte that is not part of valid
 * UTF-8 becomes U+FFFD, so the text is always valid JSON (RFC 8259 asks for
 * UTF-8) whatever the file system allowed.
 */
#ifndef BN_SETTINGS_H
#define BN_SETTINGS_H

#include <stddef.h>

/* A settings object being built. */
typedef struct bn_settings bn_settings;

/* A new, empty object; aborts the rank when memory runs out. */
bn_settings *bn_settings_new(void);
/* Add KEY with a text value (NULL stores ""), an integer, a double, a bool. */
void bn_settings_str(bn_settings *s, const char *key, const char *val);
void bn_settings_int(bn_settings *s, const char *key, long long val);
void bn_settings_double(bn_settings *s, const char *key, double val);
void bn_settings_bool(bn_settings *s, const char *key, int val);
/* The JSON text (free it), then the object is freed. */
char *bn_settings_finish(bn_settings *s);

/* Copy of TEXT with every byte that is not part of valid UTF-8 replaced by
 * U+FFFD (free it). */
char *bn_utf8_clean(const char *text);

/* Read the number stored at KEY of the settings text JSON into *val.
 * Returns 0, or -1 (leaving *val alone) when JSON does not parse, is not an
 * object, or has no number at KEY. */
int bn_settings_get_double(const char *json, const char *key, double *val);

#endif
