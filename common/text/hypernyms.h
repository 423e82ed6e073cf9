// WordNet noun hypernym graph and NLTK's path similarity, for Transfer Init's "nearest
// vocabulary synset" rule.
//
// Read from data.noun (wndb(5WN)): every noun synset line's '@' (hypernym) and '@i' (instance
// hypernym) pointers to other noun synsets. Synsets are numbered with wordnet.h's dense index
// (wordnet_synset_index), so the graph and a struct wordnet from the same directory agree.
//
// Path similarity is NLTK's Synset.path_similarity for nouns: 1 / (d + 1) where d is the
// shortest path from one synset up to a common ancestor (hypernyms and instance hypernyms,
// any of a synset's several parents) and down to the other; 1.0 for the synset itself, 0 when
// they share no ancestor (never for WordNet 3.0 nouns: all lie under entity.n.01).
//
// Example:
//     struct hypernyms *h = hypernyms_load(wn, NULL);
//     double s = hypernyms_path_similarity(h, wordnet_synset_index(wn, 2084071),   // dog
//                                              wordnet_synset_index(wn, 2121620));  // cat: 0.2
#pragma once
#include <stdint.h>

#include "text/wordnet.h"

struct hypernyms;

// Loads the pointers of `dir`/data.noun (NULL: WORDNET_DEFAULT_DIR), indexed as in `wn`.
// NULL + catlip_error naming the file on error.
struct hypernyms *hypernyms_load(const struct wordnet *wn, const char *dir);
void hypernyms_free(struct hypernyms *h);

// Direct hypernyms (and instance hypernyms) of synset `index`: writes up to max dense indices.
int hypernyms_parents(const struct hypernyms *h, int index, int *out, int max);

// Fills dist[0..synset_count) with the number of hypernym steps from `index` to each of its
// ancestors (0 for itself) and -1 elsewhere. Returns the number of synsets reached.
// `dist` must be all -1 on entry except where a previous call wrote; pass `touched` (room for
// synset_count ints) to get the indices written, so a caller can reset them cheaply.
int hypernyms_ancestors(const struct hypernyms *h, int index, int *dist, int *touched);

// NLTK path similarity of two synsets (dense indices), as above.
double hypernyms_path_similarity(const struct hypernyms *h, int a, int b);

// Of `candidates[0..n)` (dense indices), the one most path-similar to `index`; ties go to the
// earliest candidate. Returns its position in candidates (-1 when n == 0 or none is related)
// and its similarity in *similarity.
int hypernyms_nearest(const struct hypernyms *h, int index, const int *candidates, int n,
                      double *similarity);
