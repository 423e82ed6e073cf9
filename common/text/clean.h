// Caption cleaning: raw alt-text bytes -> one lowercase line of valid UTF-8.
//
// In order:
//   1. truncate the input to CAPTION_MAX_BYTES (at a UTF-8 character boundary);
//   2. URL-unquote: %XX (two hex digits) becomes that byte, '+' becomes a space;
//   3. HTML entities decoded (&amp; &lt; &gt; &quot; &apos; &nbsp; a few dozen named ones,
//      &#NNN; and &#xHH;), an unknown &name; becomes a space;
//   4. HTML tags (<...> beginning with a letter, '/' or '!', closed within 512 bytes) removed;
//   5. UTF-8 validated: every invalid sequence (stray continuation byte, overlong form,
//      surrogate, > U+10FFFF, truncated sequence) is replaced by a space and counted;
//   6. ASCII lowercased; Latin-1 letters (U+00C0..U+00FF: "Café", "Ñ") folded to their ASCII
//      base letter, since WordNet is ASCII; control characters and Unicode spaces become spaces;
//   7. whitespace collapsed to single spaces, leading and trailing spaces removed.
// The output is never longer than the input, so a buffer of CAPTION_MAX_BYTES + 1 suffices.
#pragma once
#include <stddef.h>

// Captions longer than this many bytes are truncated before cleaning. Web alt-text is almost
// always under 300 bytes; the longest useful captions (DataComp) are ~1 kB.
#define CAPTION_MAX_BYTES 1024

struct caption_clean_info {
    int invalid_utf8;   // invalid UTF-8 sequences replaced by a space
    int truncated;      // 1 when the input was longer than CAPTION_MAX_BYTES
};

// Cleans in[0..len) into out (capacity >= CAPTION_MAX_BYTES + 1, NUL-terminated). Returns the
// cleaned length. `info` may be NULL. Any bytes are accepted; nothing is ever rejected here —
// callers that want to reject repaired captions look at info->invalid_utf8.
size_t caption_clean(char *out, const char *in, size_t len, struct caption_clean_info *info);
