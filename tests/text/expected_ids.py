"""Fills the third column of captions.tsv: the first NLTK noun synset of each hand-written lemma.

Usage: /usr/bin/python3 tests/text/expected_ids.py tests/text/captions.tsv [--check]
It refuses a lemma that is not a WordNet noun lemma as written, and (as a reviewing aid for the
person labelling) lists consecutive caption words that form a WordNet compound noun which the
labels do not use. With --check it only verifies that the stored ids are up to date.
"""
import re
import sys
import tempfile

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from nltk_wordnet import open_wordnet  # noqa: E402


def main():
    path = sys.argv[1]
    check = "--check" in sys.argv
    with tempfile.TemporaryDirectory() as tmp:
        wn = open_wordnet(tmp)
        out, bad, stale = [], 0, 0
        for line in open(path, encoding="utf-8"):
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                out.append(line)
                continue
            cols = line.split("\t")
            caption, lemmas = cols[0], cols[1].split()
            ids = []
            for lemma in lemmas:
                if lemma not in wn._lemma_pos_offset_map or "n" not in wn._lemma_pos_offset_map[lemma]:
                    print("not a WordNet noun lemma: %r in %r" % (lemma, caption))
                    bad += 1
                    continue
                ids.append("n%08d" % wn._lemma_pos_offset_map[lemma]["n"][0])
            if len(cols) > 2 and cols[2].split() != ids:
                stale += 1
            words = re.findall(r"[a-z][a-z'-]*", caption.lower())
            for n in (2, 3, 4):
                for i in range(len(words) - n + 1):
                    key = "_".join(w.replace("'s", "") for w in words[i:i + n])
                    forms = wn._morphy(key, "n")
                    if forms and not any(f in lemmas for f in forms) and not check:
                        print("review: compound %s in %r" % (forms[0], caption))
            out.append("%s\t%s\t%s" % (caption, " ".join(lemmas), " ".join(ids)))
        if bad:
            sys.exit("%d lemmas are not WordNet nouns" % bad)
        if check:
            if stale:
                sys.exit("%d captions have stale ids: rerun expected_ids.py" % stale)
            print("ids up to date")
            return
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
