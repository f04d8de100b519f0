/* Service upsert/delete/read-back over rota_svc4, rota_backends4 and
 * rota_maglev4, in the order that keeps every packet's view consistent. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include "svc.h"
#include "log.h"
#include "maglev.h"

static struct rota_svc_key svc_key(const struct rota_frontend *fe, __u32 slot)
{
	struct rota_svc_key k = {
		.addr = fe->addr, .port = fe->port, .proto = fe->proto,
		.scope = fe->scope, .slot = slot,
	};
	return k;
}

size_t rota_svc_active_count(const struct rota_service *s)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n_backends; i++)
		n += !s->backends[i].terminating;
	return n;
}

void rota_svc_free(struct rota_service *s)
{
	free(s->backends);
	s->backends = NULL;
	s->n_backends = 0;
}

void rota_svc_list_free(struct rota_service *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		rota_svc_free(&list[i]);
	free(list);
}

/* The Maglev table size for `active` backends under this datapath's cap;
 * 0 with err saying why when it would exceed the cap (or active is 0). */
static uint32_t maglev_size(const struct rota_dp *dp, size_t active, char err[ROTA_ERR_LEN])
{
	uint32_t m = maglev_size_for(active, dp->cfg.maglev_m), need;

	if (m || !active)
		return m;
	need = maglev_size_for(active, ROTA_MAGLEV_MAX_M);
	if (need)
		snprintf(err, ROTA_ERR_LEN,
			 "maglev with %zu active backends needs a table of %u entries; this datapath caps "
			 "Maglev tables at %u (raise it with `rota load --maglev-size %u`)",
			 active, need, dp->cfg.maglev_m, need);
	else
		snprintf(err, ROTA_ERR_LEN,
			 "maglev with %zu active backends needs a table of at least %zu entries; the largest "
			 "is %u (at most %u active backends)", active, active * 100, ROTA_MAGLEV_MAX_M,
			 ROTA_MAGLEV_MAX_M / 100);
	return 0;
}

int rota_svc_validate(const struct rota_dp *dp, const struct rota_service *s, char err[ROTA_ERR_LEN])
{
	char a[ROTA_ADDR_STR_LEN];
	size_t active = rota_svc_active_count(s);

	if (s->fe.proto != IPPROTO_TCP && s->fe.proto != IPPROTO_UDP) {
		snprintf(err, ROTA_ERR_LEN, "protocol %u: only TCP and UDP are served", s->fe.proto);
		return -EINVAL;
	}
	if (!s->fe.port) {
		snprintf(err, ROTA_ERR_LEN, "frontend port 0: must be 1-65535");
		return -EINVAL;
	}
	for (size_t i = 0; i < s->n_backends; i++) {
		if (!s->backends[i].port || !s->backends[i].addr) {
			snprintf(err, ROTA_ERR_LEN, "backend %s: address and port must be set",
				 rota_fmt_addr_port(a, s->backends[i].addr, s->backends[i].port));
			return -EINVAL;
		}
		for (size_t j = 0; j < i; j++)
			if (s->backends[j].addr == s->backends[i].addr &&
			    s->backends[j].port == s->backends[i].port) {
				snprintf(err, ROTA_ERR_LEN, "duplicate backend %s",
					 rota_fmt_addr_port(a, s->backends[i].addr, s->backends[i].port));
				return -EINVAL;
			}
	}
	if (s->n_backends >= dp->backends_max || s->n_backends >= dp->svc_max) {
		snprintf(err, ROTA_ERR_LEN, "backends: %zu given, the maps hold at most %u",
			 s->n_backends, dp->backends_max < dp->svc_max ? dp->backends_max - 1 : dp->svc_max - 1);
		return -E2BIG;
	}
	if (s->maglev && active && !maglev_size(dp, active, err))
		return -E2BIG;
	return 0;
}

int rota_svc_get(const struct rota_dp *dp, const struct rota_frontend *fe, struct rota_service *out)
{
	struct rota_svc_key k = svc_key(fe, 0);
	struct rota_svc_entry master, slot;
	__u32 total;

	memset(out, 0, sizeof(*out));
	if (bpf_map_lookup_elem(dp->svc_fd, &k, &master))
		return -errno;
	out->fe = *fe;
	out->svc_id = master.svc_id;
	out->type = master.type;
	out->maglev = master.flags & ROTA_SVC_F_MAGLEV;
	out->maglev_m = out->maglev ? master.maglev_m : 0;
	out->affinity_timeout = master.flags & ROTA_SVC_F_AFFINITY ? master.affinity_timeout : 0;
	total = master.count + master.terminating;
	out->backends = calloc(total ? total : 1, sizeof(*out->backends));
	if (!out->backends)
		return -ENOMEM;
	for (__u32 i = 1; i <= total; i++) {
		struct rota_backend b;

		k.slot = i;
		if (bpf_map_lookup_elem(dp->svc_fd, &k, &slot) ||
		    bpf_map_lookup_elem(dp->backends_fd, &slot.backend_id, &b)) {
			char f[ROTA_ADDR_STR_LEN];

			pr_warn("service %s: slot %u or its backend is missing; skipping it",
				rota_fmt_frontend(f, fe), i);
			continue;
		}
		out->backends[out->n_backends++] = (struct rota_svc_backend){
			.addr = b.addr, .port = b.port, .id = slot.backend_id,
			.terminating = i > master.count,
		};
	}
	return 0;
}

int rota_svc_list(const struct rota_dp *dp, struct rota_service **out, size_t *n)
{
	struct rota_svc_key key, next, *prev = NULL;
	struct rota_service *list = NULL;
	size_t len = 0, cap = 0;
	int err = 0;

	while (bpf_map_get_next_key(dp->svc_fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (key.slot != 0)
			continue;
		if (len == cap) {
			struct rota_service *l = realloc(list, (cap = cap ? cap * 2 : 64) * sizeof(*l));

			if (!l) {
				err = -ENOMEM;
				break;
			}
			list = l;
		}
		struct rota_frontend fe = {
			.addr = key.addr, .port = key.port, .proto = key.proto, .scope = key.scope,
		};
		err = rota_svc_get(dp, &fe, &list[len]);
		if (err == -ENOENT) {	/* deleted while we walked */
			err = 0;
			continue;
		}
		if (err)
			break;
		len++;
	}
	if (err) {
		rota_svc_list_free(list, len);
		return err;
	}
	*out = list;
	*n = len;
	return 0;
}

/* Next free backend id, never 0. Ids only grow until the counter wraps;
 * only after that can the next one still be in use, so only then is the
 * map asked. */
static __u32 backend_id_alloc(struct rota_dp *dp)
{
	struct rota_backend b;
	__u32 id;

	for (;;) {
		id = dp->cfg.next_backend_id++;
		if (!dp->cfg.next_backend_id) {
			dp->cfg.next_backend_id = 1;
			dp->cfg.flags |= ROTA_CFG_F_BACKEND_IDS_WRAPPED;
		}
		if (id && (!(dp->cfg.flags & ROTA_CFG_F_BACKEND_IDS_WRAPPED) ||
			   bpf_map_lookup_elem(dp->backends_fd, &id, &b) != 0))
			return id;
	}
}

static __u32 svc_id_alloc(struct rota_dp *dp)
{
	__u32 id = dp->cfg.next_svc_id++;

	if (!dp->cfg.next_svc_id)
		dp->cfg.next_svc_id = 1;
	return id ? id : svc_id_alloc(dp);
}

/* Builds the table of m entries for the service's active backends and
 * publishes it under (svc_id, m). A table of that size the service already
 * has is rewritten in place (*in_place set); else a new array of chunks,
 * filled in one syscall, goes into rota_maglev4. */
static int maglev_publish(struct rota_dp *dp, __u32 svc_id, __u32 m, const struct rota_svc_backend *b,
			  size_t n, bool *in_place)
{
	LIBBPF_OPTS(bpf_map_create_opts, create, .map_flags = BPF_F_INNER_MAP);
	LIBBPF_OPTS(bpf_map_batch_opts, batch);
	struct rota_maglev_key key = { .svc_id = svc_id, .maglev_m = m };
	__u32 chunks = (m + ROTA_MAGLEV_CHUNK - 1) / ROTA_MAGLEV_CHUNK, count = chunks, *idx = NULL, *keys = NULL;
	__u32 inner_id;
	struct rota_maglev_chunk *table = NULL;
	const char **names = NULL;
	char (*bufs)[ROTA_ADDR_STR_LEN] = NULL;
	int inner = -1, err = -ENOMEM;

	names = calloc(n, sizeof(*names));
	bufs = calloc(n, sizeof(*bufs));
	idx = calloc(m, sizeof(*idx));
	table = calloc(chunks, sizeof(*table));	/* padding after m stays 0: no backend */
	keys = calloc(chunks, sizeof(*keys));
	if (!names || !bufs || !idx || !table || !keys)
		goto out;
	for (size_t i = 0; i < n; i++)
		names[i] = rota_fmt_addr_port(bufs[i], b[i].addr, b[i].port);
	err = maglev_build(names, n, m, idx);
	if (err)
		goto out;
	for (__u32 j = 0; j < m; j++)
		table[j / ROTA_MAGLEV_CHUNK].backend_id[j % ROTA_MAGLEV_CHUNK] = b[idx[j]].id;
	for (__u32 c = 0; c < chunks; c++)
		keys[c] = c;
	*in_place = false;
	if (bpf_map_lookup_elem(dp->maglev_fd, &key, &inner_id) == 0)
		inner = bpf_map_get_fd_by_id(inner_id);
	if (inner >= 0) {
		/* In place, because every update of a map of maps makes the
		 * kernel wait for an RCU grace period (milliseconds on a busy
		 * node) and an endpoint change must not. A packet meanwhile
		 * reads old or new ids, or even a torn one: whatever it gets must
		 * name an active backend of this service (lb.h checks), else it
		 * takes the random pick. */
		*in_place = true;
		err = bpf_map_update_batch(inner, keys, table, &count, &batch) ? -errno : 0;
		goto out;
	}
	inner = bpf_map_create(BPF_MAP_TYPE_ARRAY, "rota_maglev_tbl", sizeof(__u32), sizeof(*table), chunks,
			       &create);
	if (inner < 0 || bpf_map_update_batch(inner, keys, table, &count, &batch) ||
	    bpf_map_update_elem(dp->maglev_fd, &key, &inner, BPF_ANY))
		err = -errno;
out:
	if (inner >= 0)
		close(inner);
	free(names);
	free(bufs);
	free(idx);
	free(table);
	free(keys);
	return err;
}

static void maglev_table_delete(struct rota_dp *dp, __u32 svc_id, __u32 m)
{
	struct rota_maglev_key key = { .svc_id = svc_id, .maglev_m = m };

	bpf_map_delete_elem(dp->maglev_fd, &key);
}

static bool backend_kept(const struct rota_svc_backend *plan, size_t n, __u32 id);

/* Index in old of the backend at addr:port, or -1. */
static ssize_t old_index(const struct rota_service *old, const struct rota_svc_backend *w)
{
	for (size_t j = 0; old && j < old->n_backends; j++)
		if (old->backends[j].addr == w->addr && old->backends[j].port == w->port)
			return (ssize_t)j;
	return -1;
}

/* The wanted backends in slot order, with ids (reused where the same
 * address:port already backs this service, else newly allocated): active
 * ones first, each kept in the slot it had where it can be, so that adding
 * or removing one backend rewrites one or two slots, not every slot after
 * it; then the terminating ones. is_new[k]: plan[k] has a fresh id. */
static void plan_backends(struct rota_dp *dp, const struct rota_service *want,
			  const struct rota_service *old, struct rota_svc_backend *plan, bool *is_new,
			  bool *placed)
{
	size_t n = want->n_backends, active = rota_svc_active_count(want), k;

	memset(placed, 0, n * sizeof(*placed));
	for (size_t i = 0; i < n; i++)
		plan[i].id = 0;
	/* Active backends that stay active in a slot that still exists. */
	for (size_t i = 0; i < n; i++) {
		const struct rota_svc_backend *w = &want->backends[i];
		ssize_t j = old_index(old, w);

		if (w->terminating || j < 0 || (size_t)j >= active || old->backends[j].terminating ||
		    plan[j].id)
			continue;
		plan[j] = *w;
		plan[j].id = old->backends[j].id;
		is_new[j] = false;
		placed[i] = true;
	}
	/* The other active ones fill the free slots, then the terminating. */
	k = 0;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < n; i++) {
			const struct rota_svc_backend *w = &want->backends[i];
			ssize_t j;

			if (placed[i] || w->terminating != (pass == 1))
				continue;
			while (k < n && plan[k].id)
				k++;
			j = old_index(old, w);
			plan[k] = *w;
			is_new[k] = j < 0;
			plan[k].id = j < 0 ? backend_id_alloc(dp) : old->backends[j].id;
			placed[i] = true;
		}
	}
}

/* The same active backend ids, whatever their order: a Maglev table built
 * from them would be the same (maglev_build orders by address:port). */
static bool same_active(const struct rota_service *old, const struct rota_svc_backend *plan,
			size_t active)
{
	if (rota_svc_active_count(old) != active)
		return false;
	for (size_t i = 0; i < active; i++)
		if (!backend_kept(old->backends, old->n_backends, plan[i].id))
			return false;
	return true;
}

static struct rota_backend backend_value(const struct rota_service *s, const struct rota_svc_backend *b,
					 bool terminating)
{
	struct rota_backend v = {
		.addr = b->addr, .port = b->port, .proto = s->fe.proto,
		.state = terminating ? ROTA_BACKEND_TERMINATING : ROTA_BACKEND_ACTIVE,
		.svc_id = s->svc_id,
	};

	return v;
}

static int backend_write(struct rota_dp *dp, const struct rota_service *s,
			 const struct rota_svc_backend *b, bool terminating)
{
	struct rota_backend v = backend_value(s, b, terminating);

	return bpf_map_update_elem(dp->backends_fd, &b->id, &v, BPF_ANY) ? -errno : 0;
}

/* count entries in one syscall: a service's backends, and its slots, are
 * each written at once rather than one syscall per entry. */
static int update_batch(int fd, const void *keys, const void *values, __u32 count)
{
	LIBBPF_OPTS(bpf_map_batch_opts, o, .elem_flags = BPF_ANY);

	if (!count)
		return 0;
	return bpf_map_update_batch(fd, keys, values, &count, &o) < 0 ? -errno : 0;
}

static bool backend_kept(const struct rota_svc_backend *plan, size_t n, __u32 id)
{
	for (size_t i = 0; i < n; i++)
		if (plan[i].id == id)
			return true;
	return false;
}

/* Puts back what an upsert wrote before it failed. */
static void upsert_rollback(struct rota_dp *dp, const struct rota_frontend *fe, const struct rota_service *old,
			    bool had_old, const struct rota_svc_backend *plan, const bool *is_new, size_t n_written,
			    __u32 slots_written)
{
	struct rota_svc_key k = svc_key(fe, 0);	/* not old->fe: there may be no old */
	size_t old_total = had_old ? old->n_backends : 0;

	for (__u32 i = 1; i <= slots_written; i++) {
		k.slot = i;
		if (i <= old_total) {
			struct rota_svc_entry e = { .backend_id = old->backends[i - 1].id, .svc_id = old->svc_id };

			bpf_map_update_elem(dp->svc_fd, &k, &e, BPF_ANY);
		} else {
			bpf_map_delete_elem(dp->svc_fd, &k);
		}
	}
	for (size_t i = 0; i < n_written; i++)
		if (is_new[i])
			bpf_map_delete_elem(dp->backends_fd, &plan[i].id);
}

int rota_svc_upsert(struct rota_dp *dp, const struct rota_service *want_in, char err_msg[ROTA_ERR_LEN])
{
	struct rota_service want = *want_in, old = {};
	struct rota_svc_backend *plan = NULL;
	struct rota_svc_key k = svc_key(&want.fe, 0);
	struct rota_svc_entry master = {}, cur;
	size_t n = want.n_backends, active, written = 0;
	bool *is_new = NULL, *placed = NULL, had_old;
	__u32 *bkeys = NULL, nb = 0, ns = 0;		/* the batches of steps 1 and 2 */
	struct rota_backend *bvals = NULL;
	struct rota_svc_key *skeys = NULL;
	struct rota_svc_entry *svals = NULL;
	struct rota_config cfg_before;		/* the id counters before this upsert */
	bool reserved = false;			/* ids taken in rota_config */
	const char *full = NULL;	/* the map that ran out of room */
	__u32 slots = 0, m;
	bool published = false, in_place = false;
	char f[ROTA_ADDR_STR_LEN];
	int err;

	err = rota_svc_validate(dp, &want, err_msg);
	if (err)
		return err;
	err = rota_dp_lock(dp);
	if (err) {
		snprintf(err_msg, ROTA_ERR_LEN, "lock %s: %s", dp->dir, strerror(-err));
		return err;
	}
	cfg_before = dp->cfg;
	err = rota_svc_get(dp, &want.fe, &old);
	had_old = err == 0;
	if (err && err != -ENOENT)
		goto out_msg;
	active = rota_svc_active_count(&want);
	/* Checked again under the lock: the cap lives in rota_config. */
	m = want.maglev ? maglev_size(dp, active, err_msg) : 0;
	if (want.maglev && active && !m) {
		err = -E2BIG;
		goto out;
	}
	want.svc_id = had_old ? old.svc_id : svc_id_alloc(dp);

	plan = calloc(n ? n : 1, sizeof(*plan));
	is_new = calloc(n ? n : 1, sizeof(*is_new));
	placed = calloc(n ? n : 1, sizeof(*placed));
	bkeys = calloc(n ? n : 1, sizeof(*bkeys));
	bvals = calloc(n ? n : 1, sizeof(*bvals));
	skeys = calloc(n ? n : 1, sizeof(*skeys));
	svals = calloc(n ? n : 1, sizeof(*svals));
	err = -ENOMEM;
	if (!plan || !is_new || !placed || !bkeys || !bvals || !skeys || !svals)
		goto out_msg;
	plan_backends(dp, &want, had_old ? &old : NULL, plan, is_new, placed);
	/* The ids are taken before they are used: a writer dying after this
	 * wastes them, and never hands them out twice. (A failure below gives
	 * them back: nothing else saw them.) */
	if (memcmp(&cfg_before, &dp->cfg, sizeof(cfg_before))) {
		err = rota_dp_config_write(dp);
		if (err)
			goto out_msg;
		reserved = true;
	}

	/* Only what differs is written: an endpoint change at 10,000 services
	 * touches a handful of entries. */
	/* 1. New backends, and ones turning active again (those turning
	 * terminating are flipped after the master entry stops offering them).
	 * A failed batch may have written some: the rollback covers them all. */
	for (size_t i = 0; i < n; i++) {
		ssize_t j = had_old ? old_index(&old, &plan[i]) : -1;

		if (!is_new[i] && (plan[i].terminating || !old.backends[j].terminating))
			continue;
		bkeys[nb] = plan[i].id;
		bvals[nb++] = backend_value(&want, &plan[i], plan[i].terminating);
	}
	written = n;
	err = update_batch(dp->backends_fd, bkeys, bvals, nb);
	if (err) {
		full = ROTA_MAP_BACKENDS4;
		goto rollback;
	}
	/* 2. Slots: active backends first, then terminating ones. */
	for (__u32 i = 0; i < n; i++) {
		if (had_old && i < old.n_backends && old.backends[i].id == plan[i].id)
			continue;
		skeys[ns] = svc_key(&want.fe, i + 1);
		svals[ns++] = (struct rota_svc_entry){ .backend_id = plan[i].id, .svc_id = want.svc_id };
	}
	slots = (__u32)n;
	err = update_batch(dp->svc_fd, skeys, svals, ns);
	if (err) {
		full = ROTA_MAP_SVC4;
		goto rollback;
	}
	/* 3. The Maglev table, built anew when the active set changed (and
	 * with it, maybe, the size). A table of another size goes in beside
	 * the old one: packets keep using the old one until step 4. One of
	 * the same size is rewritten in place (see maglev_publish). */
	if (m && !(had_old && old.maglev_m == m && same_active(&old, plan, active))) {
		err = maglev_publish(dp, want.svc_id, m, plan, active, &in_place);
		if (err) {
			full = ROTA_MAP_MAGLEV4;
			goto rollback;
		}
		published = true;
	}
	/* 4. The master entry: from here on packets see the new service, and
	 * the table of size m. */
	master.maglev_m = m;
	master.count = (__u32)active;
	master.terminating = (__u32)(n - active);
	master.svc_id = want.svc_id;
	master.type = want.type;
	master.flags = (want.maglev ? ROTA_SVC_F_MAGLEV : 0) |
		       (want.affinity_timeout ? ROTA_SVC_F_AFFINITY : 0);
	master.affinity_timeout = want.affinity_timeout;
	k.slot = 0;
	if (had_old && !bpf_map_lookup_elem(dp->svc_fd, &k, &cur) && !memcmp(&cur, &master, sizeof(cur))) {
		/* unchanged */
	} else if (bpf_map_update_elem(dp->svc_fd, &k, &master, BPF_ANY)) {
		err = -errno;
		full = ROTA_MAP_SVC4;
		if (published && in_place && had_old && old.maglev_m == m)
			maglev_publish(dp, want.svc_id, m, old.backends, rota_svc_active_count(&old), &in_place);
		else if (published && (!had_old || old.maglev_m != m))
			maglev_table_delete(dp, want.svc_id, m);
		goto rollback;
	}

	/* 5. Clean-up nobody can reach any more. */
	for (size_t i = 0; i < n; i++)
		if (plan[i].terminating && !is_new[i] && !old.backends[old_index(&old, &plan[i])].terminating)
			backend_write(dp, &want, &plan[i], true);
	for (__u32 s = (__u32)n + 1; had_old && s <= old.n_backends; s++) {
		k.slot = s;
		bpf_map_delete_elem(dp->svc_fd, &k);
	}
	for (size_t j = 0; had_old && j < old.n_backends; j++)
		if (!backend_kept(plan, n, old.backends[j].id))
			bpf_map_delete_elem(dp->backends_fd, &old.backends[j].id);
	if (had_old && old.maglev_m && old.maglev_m != m)
		maglev_table_delete(dp, want.svc_id, old.maglev_m);
	err = 0;
	goto out;

rollback:
	/* Backends step 1 turned active again go back to terminating. */
	for (size_t i = 0; had_old && i < n; i++) {
		ssize_t j = is_new[i] ? -1 : old_index(&old, &plan[i]);

		if (j >= 0 && !plan[i].terminating && old.backends[j].terminating)
			backend_write(dp, &want, &plan[i], true);
	}
	upsert_rollback(dp, &want.fe, &old, had_old, plan, is_new, written, slots);
out_msg:
	dp->cfg = cfg_before;
	if (reserved)
		rota_dp_config_write(dp);
	if (err == -E2BIG && full)
		snprintf(err_msg, ROTA_ERR_LEN, "service %s: %s is full (`rota load` sizes it; maps unchanged)",
			 rota_fmt_frontend(f, &want.fe), full);
	else
		snprintf(err_msg, ROTA_ERR_LEN, "service %s: %s%s%s (maps unchanged)", rota_fmt_frontend(f, &want.fe),
			 strerror(-err), full ? " writing " : "", full ? full : "");
out:
	rota_dp_unlock(dp);
	rota_svc_free(&old);
	free(plan);
	free(is_new);
	free(placed);
	free(bkeys);
	free(bvals);
	free(skeys);
	free(svals);
	return err;
}

int rota_svc_delete(struct rota_dp *dp, const struct rota_frontend *fe)
{
	struct rota_svc_key k = svc_key(fe, 0);
	struct rota_service old;
	const uint32_t *sizes;
	size_t n_sizes;
	int err;

	err = rota_dp_lock(dp);
	if (err)
		return err;
	err = rota_svc_get(dp, fe, &old);
	if (err)
		goto out;
	/* Master first: new packets stop finding the service at once. */
	if (bpf_map_delete_elem(dp->svc_fd, &k)) {
		err = -errno;
		goto out_free;
	}
	/* Every size, not just the one the master named: a writer that died
	 * between steps 4 and 5 of an upsert may have left the older one. */
	sizes = maglev_sizes(&n_sizes);
	for (size_t i = 0; i < n_sizes; i++)
		maglev_table_delete(dp, old.svc_id, sizes[i]);
	for (__u32 s = 1; s <= old.n_backends; s++) {
		k.slot = s;
		bpf_map_delete_elem(dp->svc_fd, &k);
	}
	for (size_t i = 0; i < old.n_backends; i++)
		bpf_map_delete_elem(dp->backends_fd, &old.backends[i].id);
out_free:
	rota_svc_free(&old);
out:
	rota_dp_unlock(dp);
	return err;
}
