"""Cross-checks catlip's WordNet tables against NLTK's WordNet reader (an independent
implementation) over the same Debian database files.

usage: /usr/bin/python3 nltk_crosscheck.py TEXT_TOOL CAPTIONS.TSV

1. 3000 random noun lemmas (fixed seed): the offset of the first noun synset and its head word
   must agree exactly.
2. 3000 inflected forms (random lemmas + "s"/"es", and every irregular plural of noun.exc): the
   first base form from catlip's morphology must equal NLTK's morphy. NLTK differs from
   WordNet's own C morphy in two documented ways, so forms touched by them are not compared:
   NLTK has an extra "-ves -> -f" rule, and it applies the rules to words ending in "ss"; and
   NLTK keeps only the last line of a form listed twice in noun.exc.
3. The CoreNet rule on the hand-labelled captions: NLTK's WordNetLemmatizer-style lemma
   (shortest morphy form) kept when synsets(lemma)[0].name() == lemma + ".n.01"; the synsets
   must equal `text_tool label corenet` caption by caption.
Exits 1 on any disagreement, printing the first few.
"""
import html
import random
import re
import subprocess
import sys
import tempfile
import urllib.parse

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from nltk_wordnet import open_wordnet  # noqa: E402


def run_tool(tool, args, lines):
    out = subprocess.run([tool] + args, input="\n".join(lines) + "\n", capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert len(out) == len(lines) + 1, "text_tool printed %d lines for %d inputs" % (len(out) - 1, len(lines))
    return out[:-1]


def report(name, bad, total):
    print("%s: %d/%d agree" % (name, total - len(bad), total))
    for b in bad[:10]:
        print("  MISMATCH", b)
    return len(bad) == 0


def main():
    tool, captions_path = sys.argv[1], sys.argv[2]
    rng = random.Random(20240415)
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        wn = open_wordnet(tmp)
        lemmas = sorted(wn.all_lemma_names("n"))
        assert len(lemmas) > 100000, "NLTK sees only %d noun lemmas" % len(lemmas)

        # 1. first synset of random lemmas
        sample = rng.sample(lemmas, 3000)
        got = run_tool(tool, ["lookup"], sample)
        bad = []
        for lemma, line in zip(sample, got):
            s = wn.synsets(lemma, "n")[0]
            want = "%d\t%s" % (s.offset(), s.lemmas()[0].name())
            if line != want:
                bad.append((lemma, want, line))
        ok &= report("first noun synset of %d random lemmas" % len(sample), bad, len(sample))

        # 2. morphology of inflected forms
        exc = wn._exception_map["n"]
        forms = sorted(exc)
        words = [w for w in rng.sample(lemmas, 6000) if re.fullmatch(r"[a-z]+", w)]
        forms += [w + rng.choice(["s", "es"]) for w in words[:3000]]
        # NLTK keeps only the last line of a form listed twice in noun.exc ("involucra").
        lines = [l.split()[0] for l in open("/usr/share/wordnet/noun.exc")]
        twice = {f for f in lines if lines.count(f) > 1} if len(lines) < 10000 else set()
        forms = [f for f in forms if not f.endswith("ves") and not f.endswith("ss") and f not in twice]
        got = run_tool(tool, ["morph"], forms)
        bad = []
        for form, line in zip(forms, got):
            want = wn.morphy(form, "n") or "-"
            if line != want:
                bad.append((form, want, line))
        ok &= report("first noun base of %d inflected forms" % len(forms), bad, len(forms))

        # 3. the CoreNet rule on the captions
        captions = [l.split("\t")[0] for l in open(captions_path, encoding="utf-8")
                    if l.strip() and not l.startswith("#")]
        got = run_tool(tool, ["label", "corenet"], captions)
        bad = []
        for caption, line in zip(captions, got):
            text = urllib.parse.unquote_plus(caption)
            text = re.sub(r"<[a-zA-Z/!][^>]*>", " ", html.unescape(text)).lower()
            want = []
            for word in re.findall(r"[a-z0-9]+(?:[-'.][a-z0-9]+)*", text):
                if word.endswith("'s"):
                    word = word[:-2]
                forms = wn._morphy(word, "n")
                if not forms:
                    continue
                lemma = min(forms, key=len)
                first = wn.synsets(lemma, "n")[0]
                if first.name() == lemma + ".n.01":
                    sid = "n%08d" % first.offset()
                    if sid not in want:
                        want.append(sid)
            if line.split() != want:
                bad.append((caption, " ".join(want), line))
        ok &= report("CoreNet rule on %d captions" % len(captions), bad, len(captions))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
