"""NLTK's WordNet corpus reader over Debian's /usr/share/wordnet, for cross-checks.

NLTK needs a `lexnames` file that Debian's wordnet-base does not ship; its content is the
table in lexnames(5WN). This module copies the database into a temporary directory, writes
lexnames there, and returns NLTK's reader (an implementation independent of catlip's).
"""
import os
import shutil

# lexnames(5WN): file number -> lexicographer file name (syntactic category follows from it).
LEXNAMES = """adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute
noun.body noun.cognition noun.communication noun.event noun.feeling noun.food noun.group
noun.location noun.motive noun.object noun.person noun.phenomenon noun.plant noun.possession
noun.process noun.quantity noun.relation noun.shape noun.state noun.substance noun.time
verb.body verb.change verb.cognition verb.communication verb.competition verb.consumption
verb.contact verb.creation verb.emotion verb.motion verb.perception verb.possession verb.social
verb.stative verb.weather adj.ppl""".split()
CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}


def open_wordnet(tmpdir, source="/usr/share/wordnet"):
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    assert len(LEXNAMES) == 45
    root = os.path.join(tmpdir, "wordnet")
    os.makedirs(root, exist_ok=True)
    for name in os.listdir(source):
        path = os.path.join(source, name)
        if os.path.isfile(path):
            shutil.copy(path, os.path.join(root, name))
    with open(os.path.join(root, "lexnames"), "w") as f:
        for i, name in enumerate(LEXNAMES):
            f.write("%02d\t%s\t%d\n" % (i, name, CATEGORY[name.split(".")[0]]))
    return WordNetCorpusReader(root, None)
