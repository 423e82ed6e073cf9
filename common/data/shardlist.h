// Shard lists: a pattern string expanded into an ordered list of paths.
//
// Accepted, and freely combined:
// - brace ranges, zero-padded as written: "data/{00000..00099}.tar" -> data/00000.tar ...
//   data/00099.tar (descending ranges "{9..0}" count down);
// - brace alternatives: "data/{train,extra}-{0..3}.tar"; braces nest;
// - several patterns separated by commas outside braces: "a/{0..9}.tar,b/{00..04}.tar";
// - globs (* ? [...]) after brace expansion, each sorted by name; a glob that matches nothing
//   is an error;
// - "@list.txt": a file with one pattern per line (blank lines and '#' comments ignored).
// Plain paths are kept as written (whether they open is checked by whoever opens them), and
// the order is the order written; duplicates are kept.
//
// Example:
//     struct shard_list list;
//     if (shardlist_expand("data/{00000..00099}.tar", &list) != 0) die(catlip_error());
//     for (size_t i = 0; i < list.count; i++) puts(list.paths[i]);
//     shardlist_free(&list);
#pragma once
#include <stddef.h>

struct shard_list {
    char **paths;
    size_t count;
};

// Returns 0, or -1 with catlip_error() naming the pattern (unbalanced braces, a range too
// large (> 10 million paths), a glob with no match, an unreadable @file, an empty result).
int shardlist_expand(const char *pattern, struct shard_list *out);
void shardlist_free(struct shard_list *list);
