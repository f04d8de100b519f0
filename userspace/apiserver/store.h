/* store.h: the revisioned key-value store rota-apiserver keeps objects in.
 * It is shaped like etcd v3 (one global revision per transaction, per-key
 * create/mod revisions, compare-and-swap transactions, an ordered event
 * history that watches read) so that the sqlite and etcd backends are
 * interchangeable behind one table of operations. */
#pragma once
#include <stddef.h>
#include <stdint.h>

struct kv {
	char *key;
	char *value;		/* value_len bytes, NUL-terminated for convenience */
	size_t value_len;
	int64_t create_rev;
	int64_t mod_rev;
};

struct kv_list {
	struct kv *items;
	size_t n, cap;
	int64_t rev;		/* store revision the range was read at */
	int more;		/* the limit cut the range short */
};

enum txn_kind { TXN_PUT = 1, TXN_DELETE = 2 };

#define REV_ANY    (-1)		/* no precondition on the key */
#define REV_ABSENT 0		/* the key must not exist */

struct txn_op {
	enum txn_kind kind;
	const char *key;
	const char *value;
	size_t value_len;
	int64_t expect;		/* REV_ANY, REV_ABSENT or the mod_rev the key must have */
};

enum ev_type { EV_PUT = 1, EV_DELETE = 2 };

struct store_event {
	enum ev_type type;
	int64_t rev;
	char *key;
	char *value;		/* PUT: new value; DELETE: NULL */
	size_t value_len;
	char *prev;		/* value before this event, NULL if none */
	size_t prev_len;
};

struct store;
struct store_watch;

struct store_ops {
	const char *name;
	/* -ENOENT if absent. */
	int (*get)(struct store *s, const char *key, struct kv *out);
	/* Keys with prefix, in key order, strictly after start (NULL: from the
	 * first), at most limit (0: all), at revision rev (0: current; a
	 * backend without history answers -ENOTSUP for rev > 0). */
	int (*range)(struct store *s, const char *prefix, const char *start,
		     size_t limit, int64_t rev, struct kv_list *out);
	/* Atomic: every op's expectation holds and all are applied under one
	 * new revision, or nothing is. A failed expectation returns -EEXIST
	 * (REV_ABSENT), -ENOENT (key missing) or -ESTALE (other mod_rev) with
	 * *failed set to the op's index. */
	int (*txn)(struct store *s, const struct txn_op *ops, size_t n,
		   int64_t *rev, size_t *failed);
	int (*current_rev)(struct store *s, int64_t *rev);
	/* Events on keys under prefix with revision > after. -ERANGE when
	 * after is older than the retained history. */
	int (*watch_open)(struct store *s, const char *prefix, int64_t after,
			  struct store_watch **out);
	/* 1: *ev filled; 0: timeout, ev->rev = revision up to which every
	 * event has been delivered (0 if unknown); -ERANGE: history compacted
	 * under a slow watcher; other -errno. */
	int (*watch_next)(struct store_watch *w, int timeout_ms,
			  struct store_event *ev);
	void (*watch_close)(struct store_watch *w);
	void (*close)(struct store *s);
};

struct store {
	const struct store_ops *ops;
};

struct sqlite_opts {
	const char *path;
	int64_t history;	/* revisions of events kept for watches */
};

int store_sqlite_open(const struct sqlite_opts *o, struct store **out);
/* history: revisions kept before compaction (0: 10000); watch_prefix: key
 * prefix of the one shared etcd watch that feeds API watches (NULL: every
 * API watch opens its own etcd watch). */
int store_etcd_open(const char *endpoints, int64_t history, const char *watch_prefix,
		    struct store **out);

void kv_free(struct kv *kv);
void kv_list_free(struct kv_list *l);
int kv_list_push(struct kv_list *l, const char *key, const void *value,
		 size_t len, int64_t create_rev, int64_t mod_rev);
void store_event_free(struct store_event *ev);

/* Logical snapshot of every key under prefix: JSON {"revision","kvs":[{key,value(base64)}]}. */
int store_snapshot_save(struct store *s, const char *prefix, const char *file);
/* Replaces every key under prefix with the snapshot's. */
int store_snapshot_restore(struct store *s, const char *prefix, const char *file);
