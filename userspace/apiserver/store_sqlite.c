/* store_sqlite.c: the default store: an etcd-like revisioned KV in one
 * sqlite database (kv table for current values, events table for the
 * history watches resume from, meta table for the revision counters). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sqlite3.h>
#include "log.h"
#include "store.h"

struct sq_store {
	struct store base;
	sqlite3 *db;
	pthread_mutex_t mu;
	pthread_cond_t changed;
	int64_t rev;		/* last committed revision (cache of meta.rev) */
	int64_t compact_rev;	/* events with rev <= this are gone */
	int64_t history;
	unsigned txns;
};

struct sq_watch {
	struct sq_store *s;
	char *prefix, *end;
	int64_t last_id;
	int64_t last_rev;
};

static const char schema[] =
	"PRAGMA journal_mode=WAL;"
	"PRAGMA synchronous=NORMAL;"
	"CREATE TABLE IF NOT EXISTS kv(key TEXT PRIMARY KEY, value BLOB NOT NULL,"
	" create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" rev INTEGER NOT NULL, type INTEGER NOT NULL, key TEXT NOT NULL,"
	" value BLOB, prev BLOB);"
	"CREATE INDEX IF NOT EXISTS events_rev ON events(rev);"
	"CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	"INSERT OR IGNORE INTO meta VALUES('rev', 1);"
	"INSERT OR IGNORE INTO meta VALUES('compact_rev', 0);";

static int sq_err(struct sq_store *s, const char *what, int rc)
{
	pr_warn("sqlite %s: %s (%d)", what, sqlite3_errmsg(s->db), rc);
	return rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? -EBUSY :
	       rc == SQLITE_FULL ? -ENOSPC : rc == SQLITE_NOMEM ? -ENOMEM : -EIO;
}

/* Upper bound for a prefix scan: prefix with its last byte incremented. */
static char *prefix_end(const char *prefix)
{
	size_t n = strlen(prefix);
	char *e = strdup(prefix);

	if (!e)
		return NULL;
	while (n > 0 && (unsigned char)e[n - 1] == 0xff)
		e[--n] = 0;
	if (n)
		e[n - 1]++;
	return e;
}

static int64_t meta_get(struct sq_store *s, const char *name)
{
	sqlite3_stmt *st;
	int64_t v = 0;

	if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE name=?", -1, &st, NULL))
		return 0;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static int meta_set(struct sq_store *s, const char *name, int64_t v)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(s->db, "UPDATE meta SET value=? WHERE name=?", -1, &st, NULL);
	if (rc)
		return sq_err(s, "prepare meta", rc);
	sqlite3_bind_int64(st, 1, v);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : sq_err(s, "update meta", rc);
}

/* Refreshes the cached counters: another process (snapshot restore) may
 * have written the database. Caller holds mu. */
static void sync_meta(struct sq_store *s)
{
	int64_t r = meta_get(s, "rev");

	if (r > s->rev)
		s->rev = r;
	s->compact_rev = meta_get(s, "compact_rev");
}

static int sq_get(struct store *st, const char *key, struct kv *out)
{
	struct sq_store *s = (struct sq_store *)st;
	sqlite3_stmt *q;
	int rc, err = -ENOENT;

	pthread_mutex_lock(&s->mu);
	rc = sqlite3_prepare_v2(s->db, "SELECT value, create_rev, mod_rev FROM kv WHERE key=?",
				-1, &q, NULL);
	if (rc) {
		err = sq_err(s, "prepare get", rc);
		goto out;
	}
	sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		size_t len = sqlite3_column_bytes(q, 0);

		out->key = strdup(key);
		out->value = malloc(len + 1);
		if (!out->key || !out->value) {
			kv_free(out);
			err = -ENOMEM;
		} else {
			memcpy(out->value, sqlite3_column_blob(q, 0), len);
			out->value[len] = 0;
			out->value_len = len;
			out->create_rev = sqlite3_column_int64(q, 1);
			out->mod_rev = sqlite3_column_int64(q, 2);
			err = 0;
		}
	} else if (rc != SQLITE_DONE) {
		err = sq_err(s, "get", rc);
	}
	sqlite3_finalize(q);
out:
	pthread_mutex_unlock(&s->mu);
	return err;
}

static int sq_range(struct store *st, const char *prefix, const char *start,
		    size_t limit, int64_t rev, struct kv_list *out)
{
	struct sq_store *s = (struct sq_store *)st;
	char *end = prefix_end(prefix);
	sqlite3_stmt *q = NULL;
	int rc, err = 0;
	size_t n = 0;

	/* No multi-version history: a paged list continues on current data. */
	(void)rev;
	if (!end)
		return -ENOMEM;
	pthread_mutex_lock(&s->mu);
	sync_meta(s);
	rc = sqlite3_prepare_v2(s->db,
		"SELECT key, value, create_rev, mod_rev FROM kv WHERE key >= ?1 AND key < ?2"
		" AND (?3 IS NULL OR key > ?3) ORDER BY key LIMIT ?4", -1, &q, NULL);
	if (rc) {
		err = sq_err(s, "prepare range", rc);
		goto out;
	}
	sqlite3_bind_text(q, 1, prefix, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, end, -1, SQLITE_STATIC);
	if (start)
		sqlite3_bind_text(q, 3, start, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(q, 3);
	sqlite3_bind_int64(q, 4, limit ? (int64_t)limit + 1 : -1);
	out->rev = s->rev;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (limit && n == limit) {
			out->more = 1;
			break;
		}
		err = kv_list_push(out, (const char *)sqlite3_column_text(q, 0),
				   sqlite3_column_blob(q, 1), sqlite3_column_bytes(q, 1),
				   sqlite3_column_int64(q, 2), sqlite3_column_int64(q, 3));
		if (err)
			goto out;
		n++;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		err = sq_err(s, "range", rc);
out:
	sqlite3_finalize(q);
	pthread_mutex_unlock(&s->mu);
	free(end);
	if (err)
		kv_list_free(out);
	return err;
}

static int exec(struct sq_store *s, const char *sql)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

	return rc ? sq_err(s, sql, rc) : 0;
}

/* Drops events older than the retained window. Caller holds mu, inside a
 * transaction. */
static int compact(struct sq_store *s, int64_t rev)
{
	int64_t keep_after = rev - s->history;
	sqlite3_stmt *q;
	int rc;

	if (keep_after <= s->compact_rev)
		return 0;
	rc = sqlite3_prepare_v2(s->db, "DELETE FROM events WHERE rev <= ?", -1, &q, NULL);
	if (rc)
		return sq_err(s, "prepare compact", rc);
	sqlite3_bind_int64(q, 1, keep_after);
	rc = sqlite3_step(q);
	sqlite3_finalize(q);
	if (rc != SQLITE_DONE)
		return sq_err(s, "compact", rc);
	s->compact_rev = keep_after;
	return meta_set(s, "compact_rev", keep_after);
}

static int sq_txn(struct store *st, const struct txn_op *ops, size_t n,
		  int64_t *rev_out, size_t *failed)
{
	struct sq_store *s = (struct sq_store *)st;
	sqlite3_stmt *sel = NULL, *put = NULL, *del = NULL, *ev = NULL;
	int64_t rev;
	int rc, err;
	size_t i;

	pthread_mutex_lock(&s->mu);
	err = exec(s, "BEGIN IMMEDIATE");
	if (err)
		goto unlock;
	rev = meta_get(s, "rev") + 1;
	s->compact_rev = meta_get(s, "compact_rev");
	if ((rc = sqlite3_prepare_v2(s->db, "SELECT value, create_rev, mod_rev FROM kv WHERE key=?",
				     -1, &sel, NULL)) ||
	    (rc = sqlite3_prepare_v2(s->db,
		"INSERT INTO kv(key, value, create_rev, mod_rev) VALUES(?1, ?2, ?3, ?3)"
		" ON CONFLICT(key) DO UPDATE SET value=?2, mod_rev=?3", -1, &put, NULL)) ||
	    (rc = sqlite3_prepare_v2(s->db, "DELETE FROM kv WHERE key=?", -1, &del, NULL)) ||
	    (rc = sqlite3_prepare_v2(s->db,
		"INSERT INTO events(rev, type, key, value, prev) VALUES(?, ?, ?, ?, ?)",
		-1, &ev, NULL))) {
		err = sq_err(s, "prepare txn", rc);
		goto rollback;
	}
	for (i = 0; i < n; i++) {
		const struct txn_op *op = &ops[i];
		int exists;
		int64_t mod = 0;

		sqlite3_reset(sel);
		sqlite3_bind_text(sel, 1, op->key, -1, SQLITE_STATIC);
		rc = sqlite3_step(sel);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			err = sq_err(s, "txn read", rc);
			goto rollback;
		}
		exists = rc == SQLITE_ROW;
		if (exists)
			mod = sqlite3_column_int64(sel, 2);
		if (op->expect == REV_ABSENT && exists)
			err = -EEXIST;
		else if (op->expect > 0 && !exists)
			err = -ENOENT;
		else if (op->expect > 0 && mod != op->expect)
			err = -ESTALE;
		else if (op->kind == TXN_DELETE && !exists && op->expect != REV_ANY)
			err = -ENOENT;
		if (err) {
			if (failed)
				*failed = i;
			goto rollback;
		}
		if (op->kind == TXN_DELETE && !exists)
			continue;

		sqlite3_reset(ev);
		sqlite3_bind_int64(ev, 1, rev);
		sqlite3_bind_int(ev, 2, op->kind == TXN_PUT ? 1 : 2);
		sqlite3_bind_text(ev, 3, op->key, -1, SQLITE_STATIC);
		if (op->kind == TXN_PUT)
			sqlite3_bind_blob(ev, 4, op->value, op->value_len, SQLITE_STATIC);
		else
			sqlite3_bind_null(ev, 4);
		if (exists)
			sqlite3_bind_blob(ev, 5, sqlite3_column_blob(sel, 0),
					  sqlite3_column_bytes(sel, 0), SQLITE_TRANSIENT);
		else
			sqlite3_bind_null(ev, 5);
		rc = sqlite3_step(ev);
		if (rc != SQLITE_DONE) {
			err = sq_err(s, "txn event", rc);
			goto rollback;
		}
		sqlite3_reset(sel);

		if (op->kind == TXN_PUT) {
			sqlite3_reset(put);
			sqlite3_bind_text(put, 1, op->key, -1, SQLITE_STATIC);
			sqlite3_bind_blob(put, 2, op->value, op->value_len, SQLITE_STATIC);
			sqlite3_bind_int64(put, 3, rev);
			rc = sqlite3_step(put);
		} else {
			sqlite3_reset(del);
			sqlite3_bind_text(del, 1, op->key, -1, SQLITE_STATIC);
			rc = sqlite3_step(del);
		}
		if (rc != SQLITE_DONE) {
			err = sq_err(s, "txn write", rc);
			goto rollback;
		}
	}
	err = meta_set(s, "rev", rev);
	if (!err && (++s->txns % 64) == 0)
		err = compact(s, rev);
	if (err)
		goto rollback;
	err = exec(s, "COMMIT");
	if (err)
		goto rollback;
	s->rev = rev;
	if (rev_out)
		*rev_out = rev;
	pthread_cond_broadcast(&s->changed);
	goto unlock;
rollback:
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
unlock:
	sqlite3_finalize(sel);
	sqlite3_finalize(put);
	sqlite3_finalize(del);
	sqlite3_finalize(ev);
	pthread_mutex_unlock(&s->mu);
	return err;
}

static int sq_current_rev(struct store *st, int64_t *rev)
{
	struct sq_store *s = (struct sq_store *)st;

	pthread_mutex_lock(&s->mu);
	sync_meta(s);
	*rev = s->rev;
	pthread_mutex_unlock(&s->mu);
	return 0;
}

static int sq_watch_open(struct store *st, const char *prefix, int64_t after,
			 struct store_watch **out)
{
	struct sq_store *s = (struct sq_store *)st;
	struct sq_watch *w;
	sqlite3_stmt *q;
	int rc, err = 0;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->s = s;
	w->prefix = strdup(prefix);
	w->end = prefix_end(prefix);
	if (!w->prefix || !w->end) {
		err = -ENOMEM;
		goto fail;
	}
	pthread_mutex_lock(&s->mu);
	sync_meta(s);
	if (after < s->compact_rev) {
		pthread_mutex_unlock(&s->mu);
		err = -ERANGE;
		goto fail;
	}
	rc = sqlite3_prepare_v2(s->db, "SELECT coalesce(max(id), 0) FROM events WHERE rev <= ?",
				-1, &q, NULL);
	if (rc) {
		err = sq_err(s, "prepare watch", rc);
		pthread_mutex_unlock(&s->mu);
		goto fail;
	}
	sqlite3_bind_int64(q, 1, after);
	if (sqlite3_step(q) == SQLITE_ROW)
		w->last_id = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	pthread_mutex_unlock(&s->mu);
	w->last_rev = after;
	*out = (struct store_watch *)w;
	return 0;
fail:
	free(w->prefix);
	free(w->end);
	free(w);
	return err;
}

static char *dup_blob(sqlite3_stmt *q, int col, size_t *len)
{
	const void *b = sqlite3_column_blob(q, col);
	size_t n = sqlite3_column_bytes(q, col);
	char *p;

	if (sqlite3_column_type(q, col) == SQLITE_NULL)
		return NULL;
	p = malloc(n + 1);
	if (!p)
		return NULL;
	memcpy(p, b, n);
	p[n] = 0;
	*len = n;
	return p;
}

/* The newest event's id, 0 if none (or on error: then nothing is skipped). */
static int64_t max_event_id(struct sq_store *s)
{
	sqlite3_stmt *q;
	int64_t id = 0;

	if (sqlite3_prepare_v2(s->db, "SELECT coalesce(max(id), 0) FROM events", -1, &q, NULL))
		return 0;
	if (sqlite3_step(q) == SQLITE_ROW)
		id = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	return id;
}

static int sq_watch_next(struct store_watch *sw, int timeout_ms, struct store_event *ev)
{
	struct sq_watch *w = (struct sq_watch *)sw;
	struct sq_store *s = w->s;
	struct timespec dl;
	sqlite3_stmt *q = NULL;
	int rc, ret = 0;

	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += timeout_ms / 1000;
	dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (dl.tv_nsec >= 1000000000) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&s->mu);
	for (;;) {
		int64_t seen_rev, seen_id;

		sync_meta(s);
		seen_rev = s->rev;
		seen_id = max_event_id(s);
		if (w->last_rev < s->compact_rev) {
			ret = -ERANGE;
			break;
		}
		rc = sqlite3_prepare_v2(s->db,
			"SELECT id, rev, type, key, value, prev FROM events"
			" WHERE id > ?1 AND key >= ?2 AND key < ?3 ORDER BY id LIMIT 1", -1, &q, NULL);
		if (rc) {
			ret = sq_err(s, "prepare watch", rc);
			break;
		}
		sqlite3_bind_int64(q, 1, w->last_id);
		sqlite3_bind_text(q, 2, w->prefix, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 3, w->end, -1, SQLITE_STATIC);
		rc = sqlite3_step(q);
		if (rc == SQLITE_ROW) {
			memset(ev, 0, sizeof(*ev));
			w->last_id = sqlite3_column_int64(q, 0);
			ev->rev = sqlite3_column_int64(q, 1);
			ev->type = sqlite3_column_int(q, 2) == 1 ? EV_PUT : EV_DELETE;
			ev->key = strdup((const char *)sqlite3_column_text(q, 3));
			ev->value = dup_blob(q, 4, &ev->value_len);
			ev->prev = dup_blob(q, 5, &ev->prev_len);
			w->last_rev = ev->rev;
			ret = ev->key ? 1 : -ENOMEM;
			break;
		}
		sqlite3_finalize(q);
		q = NULL;
		if (rc != SQLITE_DONE) {
			ret = sq_err(s, "watch read", rc);
			break;
		}
		/* Nothing under the prefix up to seen_rev: safe progress point. */
		if (seen_rev > w->last_rev)
			w->last_rev = seen_rev;
		/* Nor up to seen_id (read before the scan, so everything up to
		 * it was scanned): skip those events for good. Otherwise each
		 * wake-up rescans them, and a watcher of one kind makes every
		 * write of another kind cost O(its events since the last match). */
		if (seen_id > w->last_id)
			w->last_id = seen_id;
		ev->rev = w->last_rev;
		rc = pthread_cond_timedwait(&s->changed, &s->mu, &dl);
		if (rc == ETIMEDOUT) {
			ret = 0;
			break;
		}
	}
	sqlite3_finalize(q);
	pthread_mutex_unlock(&s->mu);
	return ret;
}

static void sq_watch_close(struct store_watch *sw)
{
	struct sq_watch *w = (struct sq_watch *)sw;

	if (!w)
		return;
	free(w->prefix);
	free(w->end);
	free(w);
}

static void sq_close(struct store *st)
{
	struct sq_store *s = (struct sq_store *)st;

	if (!s)
		return;
	sqlite3_close(s->db);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->changed);
	free(s);
}

static const struct store_ops sq_ops = {
	.name = "sqlite",
	.get = sq_get,
	.range = sq_range,
	.txn = sq_txn,
	.current_rev = sq_current_rev,
	.watch_open = sq_watch_open,
	.watch_next = sq_watch_next,
	.watch_close = sq_watch_close,
	.close = sq_close,
};

int store_sqlite_open(const struct sqlite_opts *o, struct store **out)
{
	struct sq_store *s = calloc(1, sizeof(*s));
	pthread_condattr_t ca;
	int rc, err;

	if (!s)
		return -ENOMEM;
	s->base.ops = &sq_ops;
	s->history = o->history > 0 ? o->history : 10000;
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->changed, &ca);
	pthread_condattr_destroy(&ca);
	rc = sqlite3_open_v2(o->path, &s->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
	if (rc) {
		pr_warn("open sqlite store %s: %s", o->path,
			s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		err = -EIO;
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 5000);
	err = exec(s, schema);
	if (err)
		goto fail;
	sync_meta(s);
	*out = &s->base;
	return 0;
fail:
	sq_close(&s->base);
	return err;
}
