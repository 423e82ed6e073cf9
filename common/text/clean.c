// Caption cleaning (see clean.h): a few passes over at most CAPTION_MAX_BYTES bytes.
#include "text/clean.h"

#include <stdint.h>
#include <string.h>

static int hex_value(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static size_t utf8_encode(char *out, uint32_t cp) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

// Decodes one UTF-8 character at s[0..n). Returns its length, or 0 when invalid.
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned c = s[0];
    size_t need;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        need = 2, v = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        need = 3, v = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        need = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < need) return 0;
    for (size_t k = 1; k < need; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[k] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return need;
}

// Pass 2: %XX and '+'.
static size_t url_unquote(char *out, const char *in, size_t len) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (in[i] == '+') {
            out[o++] = ' ';
        } else if (in[i] == '%' && i + 2 < len && (hi = hex_value((unsigned char)in[i + 1])) >= 0 &&
                   (lo = hex_value((unsigned char)in[i + 2])) >= 0) {
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = in[i];
        }
    }
    return o;
}

struct named_entity {
    const char *name;
    uint32_t cp;
};
static const struct named_entity entities[] = {
    {"amp", '&'},      {"lt", '<'},        {"gt", '>'},       {"quot", '"'},    {"apos", '\''},
    {"nbsp", 0xA0},    {"ndash", 0x2013},  {"mdash", 0x2014}, {"hellip", 0x2026},
    {"lsquo", 0x2018}, {"rsquo", 0x2019},  {"ldquo", 0x201C}, {"rdquo", 0x201D},
    {"laquo", 0xAB},   {"raquo", 0xBB},    {"copy", 0xA9},    {"reg", 0xAE},    {"trade", 0x2122},
    {"deg", 0xB0},     {"middot", 0xB7},   {"bull", 0x2022},  {"times", 0xD7},  {"euro", 0x20AC},
    {"pound", 0xA3},   {"cent", 0xA2},     {"yen", 0xA5},     {"sect", 0xA7},   {"frac12", 0xBD},
    {"agrave", 0xE0},  {"aacute", 0xE1},   {"acirc", 0xE2},   {"auml", 0xE4},   {"aring", 0xE5},
    {"ccedil", 0xE7},  {"egrave", 0xE8},   {"eacute", 0xE9},  {"ecirc", 0xEA},  {"euml", 0xEB},
    {"iacute", 0xED},  {"icirc", 0xEE},    {"iuml", 0xEF},    {"ntilde", 0xF1}, {"oacute", 0xF3},
    {"ocirc", 0xF4},   {"ouml", 0xF6},     {"uacute", 0xFA},  {"ucirc", 0xFB},  {"uuml", 0xFC},
    {"szlig", 0xDF},   {"Eacute", 0xC9},   {"shy", 0xAD},     {"zwj", 0x200D},  {"zwnj", 0x200C},
};

// Pass 3: &name; &#NNN; &#xHH;. A '&' that does not start an entity is kept.
static size_t decode_entities(char *out, const char *in, size_t len) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (in[i] != '&') {
            out[o++] = in[i];
            continue;
        }
        size_t j = i + 1;
        while (j < len && j - i <= 32 && in[j] != ';' && in[j] != '&' && in[j] != ' ') j++;
        if (j >= len || in[j] != ';' || j == i + 1) {
            out[o++] = in[i];
            continue;
        }
        const char *name = in + i + 1;
        size_t name_len = j - i - 1;
        uint32_t cp = 0;
        int known = 0;
        if (name[0] == '#') {
            int hex = name_len > 1 && (name[1] == 'x' || name[1] == 'X');
            size_t k = hex ? 2 : 1;
            known = k < name_len;
            for (; k < name_len && known; k++) {
                int d = hex ? hex_value((unsigned char)name[k])
                            : (name[k] >= '0' && name[k] <= '9' ? name[k] - '0' : -1);
                if (d < 0 || cp > 0x10FFFF) known = 0;
                else cp = cp * (hex ? 16 : 10) + (uint32_t)d;
            }
            // Code points that are not characters decode to a space.
            if (known && (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))) cp = ' ';
        } else {
            for (size_t e = 0; e < sizeof entities / sizeof *entities; e++)
                if (strlen(entities[e].name) == name_len && !memcmp(entities[e].name, name, name_len)) {
                    cp = entities[e].cp;
                    known = 1;
                    break;
                }
            if (!known) {  // an unknown but well-formed &name;
                int word = 1;
                for (size_t k = 0; k < name_len; k++)
                    if (!((name[k] >= 'a' && name[k] <= 'z') || (name[k] >= 'A' && name[k] <= 'Z') ||
                          (name[k] >= '0' && name[k] <= '9')))
                        word = 0;
                if (word) cp = ' ', known = 1;
            }
        }
        if (!known) {
            out[o++] = in[i];
            continue;
        }
        char enc[4];
        size_t n = utf8_encode(enc, cp);
        if (n > j - i + 1) n = 1, enc[0] = ' ';  // never grows (cannot happen: "&#x1;" is 5 bytes)
        memcpy(out + o, enc, n);
        o += n;
        i = j;
    }
    return o;
}

// Pass 4: <tag ...>, </tag>, <!-- ... --> become one space.
static size_t strip_tags(char *out, const char *in, size_t len) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (in[i] == '<' && i + 1 < len) {
            unsigned char c = (unsigned char)in[i + 1];
            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '/' || c == '!') {
                size_t limit = len - i > 512 ? i + 512 : len;
                const char *close = memchr(in + i, '>', limit - i);
                if (close) {
                    out[o++] = ' ';
                    i = (size_t)(close - in);
                    continue;
                }
            }
        }
        out[o++] = in[i];
    }
    return o;
}

// U+00C0..U+00FF -> ASCII base letter (0: not a letter).
static const char latin1_fold[64] = "aaaaaaaceeeeiiiidnooooo\0ouuuuyts"
                                    "aaaaaaaceeeeiiiidnooooo\0ouuuuyty";

static int is_unicode_space(uint32_t cp) {
    return cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000 || cp == 0xFEFF ||
           cp == 0x200B || cp == 0x200C || cp == 0x200D || cp == 0xAD;
}

// Passes 5-7.
static size_t normalise(char *out, const char *in, size_t len, int *invalid) {
    size_t o = 0;
    int pending_space = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = utf8_decode((const unsigned char *)in + i, len - i, &cp);
        char enc[4];
        size_t enc_len;
        if (n == 0) {
            (*invalid)++;
            cp = ' ';
            n = 1;
        }
        if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0) || cp == ' ' || is_unicode_space(cp)) {
            pending_space = o > 0;
            i += n;
            continue;
        }
        if (cp < 0x80) {
            enc[0] = (char)(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
            enc_len = 1;
        } else if (cp >= 0xC0 && cp <= 0xFF && latin1_fold[cp - 0xC0]) {
            enc[0] = latin1_fold[cp - 0xC0];
            enc_len = 1;
        } else {
            memcpy(enc, in + i, n);  // other characters are kept as they were written
            enc_len = n;
        }
        if (pending_space) out[o++] = ' ';
        pending_space = 0;
        memcpy(out + o, enc, enc_len);
        o += enc_len;
        i += n;
    }
    return o;
}

size_t caption_clean(char *out, const char *in, size_t len, struct caption_clean_info *info) {
    char a[CAPTION_MAX_BYTES], b[CAPTION_MAX_BYTES];
    int truncated = 0, invalid = 0;
    if (len > CAPTION_MAX_BYTES) {
        // Cut at a character boundary: back up over continuation bytes.
        size_t cut = CAPTION_MAX_BYTES;
        while (cut > CAPTION_MAX_BYTES - 4 && ((unsigned char)in[cut] & 0xC0) == 0x80) cut--;
        len = cut;
        truncated = 1;
    }
    size_t n = url_unquote(a, in, len);
    n = decode_entities(b, a, n);
    n = strip_tags(a, b, n);
    n = normalise(out, a, n, &invalid);
    out[n] = '\0';
    if (info) {
        info->invalid_utf8 = invalid;
        info->truncated = truncated;
    }
    return n;
}
