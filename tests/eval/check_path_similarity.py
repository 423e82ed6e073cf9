#!/usr/bin/python3
"""common/text/hypernyms.c's path similarity against NLTK's Synset.path_similarity (an
independent implementation over the same Debian WordNet files), on random noun synset pairs
and some chosen ones.

  check_path_similarity.py EVAL_TOOL
"""
import os
import random
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "text"))
from nltk_wordnet import open_wordnet  # noqa: E402


def main():
    tool = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        wn = open_wordnet(tmp)
        nouns = list(wn.all_synsets("n"))
        rng = random.Random(7)
        pairs = [(wn.synset("dog.n.01"), wn.synset("cat.n.01")), (wn.synset("puppy.n.01"), wn.synset("dog.n.01")),
                 (wn.synset("golden_retriever.n.01"), wn.synset("dog.n.01")),
                 (wn.synset("paris.n.01"), wn.synset("city.n.01"))]  # an instance hypernym
        # Close pairs (a synset and a relative) as well as random ones.
        while len(pairs) < 400:
            a = rng.choice(nouns)
            if len(pairs) % 2:
                rel = a.hypernyms() + a.instance_hypernyms()
                b = rng.choice(rel[0].hyponyms()) if rel and rel[0].hyponyms() else rng.choice(nouns)
            else:
                b = rng.choice(nouns)
            pairs.append((a, b))
        text = "".join(f"n{a.offset():08d} n{b.offset():08d}\n" for a, b in pairs)
        out = subprocess.run([tool, "pathsim"], input=text, stdout=subprocess.PIPE, text=True, check=True).stdout
        got = [float(line.split()[2]) for line in out.splitlines()]
        bad = 0
        for (a, b), g in zip(pairs, got):
            want = a.path_similarity(b) or 0.0
            if abs(g - want) > 1e-12:
                bad += 1
                if bad <= 10:
                    print(f"FAIL {a.name()} {b.name()}: catlip {g} NLTK {want}")
        print(f"{len(pairs) - bad}/{len(pairs)} path similarities equal NLTK's")
        return 1 if bad or len(got) != len(pairs) else 0


if __name__ == "__main__":
    sys.exit(main())
