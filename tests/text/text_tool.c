// Test helper for the Python cross-checks: reads one item per line on stdin and prints one line
// per item on stdout, using catlip's in-memory WordNet and labeller.
//
//   text_tool lookup         lemma   -> "offset<TAB>head word" of its first noun synset ("-" if none)
//   text_tool morph          form    -> its first noun base form by wordnet_morph ("-" if none)
//   text_tool label MODE     caption -> the synset ids labeler_label finds (MODE nouns|corenet)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "text/labeler.h"

int main(int argc, char **argv) {
    if (argc < 2) catlip_die("usage: text_tool lookup|morph|label MODE < lines");
    int mode = LABELER_NOUNS;
    if (!strcmp(argv[1], "label") && (argc < 3 || (mode = labeler_mode_parse(argv[2])) < 0))
        catlip_die("text_tool label needs a mode: nouns or corenet");
    struct labeler *lab = labeler_create(NULL, (enum labeler_mode)mode);
    if (!lab) catlip_die("%s", catlip_error());
    const struct wordnet *wn = labeler_wordnet(lab);
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    while ((got = getline(&line, &cap, stdin)) >= 0) {
        size_t len = (size_t)got;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
        line[len] = '\0';
        if (!strcmp(argv[1], "lookup")) {
            const struct wordnet_entry *e = wordnet_lookup(wn, line, len);
            if (e && e->noun_offset) printf("%u\t%s\n", e->noun_offset, wordnet_synset_word(wn, e->noun_offset));
            else printf("-\n");
        } else if (!strcmp(argv[1], "morph")) {
            const struct wordnet_entry *base[8];
            int n = wordnet_morph(wn, line, len, WORDNET_NOUN, base, 8);
            printf("%s\n", n ? base[0]->lemma : "-");
        } else if (!strcmp(argv[1], "label")) {
            struct synset_hit hits[LABELER_MAX_HITS];
            int n = labeler_label(lab, line, len, hits, LABELER_MAX_HITS);
            for (int i = 0; i < n; i++) printf("%s%s", i ? " " : "", hits[i].id);
            printf("\n");
        } else {
            catlip_die("unknown mode '%s'", argv[1]);
        }
    }
    free(line);
    labeler_free(lab);
    return 0;
}
