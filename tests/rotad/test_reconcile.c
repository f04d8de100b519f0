/* Tests of rotad's reconciler (reconcile.c) and the change tracking of its
 * cache (cache.c) on a real datapath in a private bpffs directory: a sync
 * revisits only the Services whose object or slices changed and writes
 * only what differs, leaving the others unread; a list makes the next sync
 * revisit everything and remove what no Service wants (also what a
 * previous agent left); a slice moving between Services updates both; two
 * Services wanting one frontend leave it to the holder, and the other takes
 * it once it is free. Needs root (bpffs, BPF maps). */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include "cache.h"
#include "reconcile.h"
#include "log.h"

static char dir[128];
static volatile sig_atomic_t loaded;
static struct rota_dp dp;
static struct cache cache;
static struct reconciler rec;

static void unload(void)
{
	if (!loaded)
		return;
	loaded = 0;
	rota_dp_unload(dir);
}

static void on_signal(int sig)
{
	unload();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* ---- objects as the API serves them */

static void event(enum cache_kind kind, const char *type, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	cJSON *obj;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	obj = cJSON_Parse(buf);
	assert_non_null(obj);
	cache_apply(&cache, kind, type, obj);
	cJSON_Delete(obj);
}

static void service(const char *type, const char *name, const char *ip, int port)
{
	event(CACHE_SERVICES, type,
	      "{\"metadata\":{\"namespace\":\"t\",\"name\":\"%s\"},"
	      "\"spec\":{\"clusterIP\":\"%s\",\"ports\":[{\"name\":\"web\",\"port\":%d,\"protocol\":\"TCP\"}]}}",
	      name, ip, port);
}

/* A slice of Service svc with n endpoints 10.9.<third>.1..n on port 8080. */
static void slice(const char *type, const char *name, const char *svc, int third, int n)
{
	char eps[2048] = "";
	size_t len = 0;

	for (int i = 1; i <= n; i++)
		len += (size_t)snprintf(eps + len, sizeof(eps) - len, "%s{\"addresses\":[\"10.9.%d.%d\"]}",
					i > 1 ? "," : "", third, i);
	event(CACHE_SLICES, type,
	      "{\"metadata\":{\"namespace\":\"t\",\"name\":\"%s\","
	      "\"labels\":{\"kubernetes.io/service-name\":\"%s\"}},\"addressType\":\"IPv4\","
	      "\"ports\":[{\"name\":\"web\",\"port\":8080,\"protocol\":\"TCP\"}],\"endpoints\":[%s]}",
	      name, svc, eps);
}

/* An empty list of each kind, as after a relist that found nothing: the
 * cache is synced and empty, and the next sync revisits everything. */
static void listed(void)
{
	for (enum cache_kind k = 0; k < CACHE_KINDS; k++) {
		struct cache_list l = { .kind = k };

		cache_list_commit(&cache, &l);
	}
}

/* ---- one sync, and what the maps hold */

static bool last_all;

static int sync_now(void)
{
	struct cache_changes ch;
	int failures;

	pthread_mutex_lock(&cache.lock);
	cache_take_changes(&cache, &ch);
	pthread_mutex_unlock(&cache.lock);
	last_all = ch.all;
	failures = reconcile(&rec, &cache, &ch);
	cache_changes_free(&ch);
	return failures;
}

/* Backends the maps hold for ip:port/TCP; -1 when there is no such service. */
static int backends(const char *ip, int port, int *third_out)
{
	struct rota_frontend fe = { .port = htons((uint16_t)port), .proto = IPPROTO_TCP };
	struct rota_service s;
	int n;

	assert_int_equal(inet_pton(AF_INET, ip, &fe.addr), 1);
	if (rota_svc_get(&dp, &fe, &s) == -ENOENT)
		return -1;
	n = (int)s.n_backends;
	if (third_out)
		*third_out = n ? (int)((ntohl(s.backends[0].addr) >> 8) & 0xff) : -1;
	rota_svc_free(&s);
	return n;
}

static int setup(void **state)
{
	struct rota_load_opts o = { 0 };

	(void)state;
	snprintf(dir, sizeof(dir), "/sys/fs/bpf/rota-test-rec-%d", (int)getpid());
	o.dir = dir;
	loaded = 1;
	if (rota_dp_load(&o) || rota_dp_open(&dp, dir))
		return -1;
	cache_init(&cache, "node-a");
	return reconciler_init(&rec, &dp, false) ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	reconciler_free(&rec);
	cache_free(&cache);
	rota_dp_close(&dp);
	unload();
	return 0;
}

/* ---- the tests, in order: each starts from what the previous left */

static void test_first_sync_writes_everything(void **state)
{
	(void)state;
	listed();	/* events after the list: the sync still revisits everything */
	service("ADDED", "a", "10.96.0.1", 80);
	service("ADDED", "b", "10.96.0.2", 80);
	slice("ADDED", "a-1", "a", 1, 3);
	slice("ADDED", "b-1", "b", 2, 2);
	assert_int_equal(sync_now(), 0);
	assert_true(last_all);
	assert_int_equal(rec.upserts, 2);
	assert_int_equal(backends("10.96.0.1", 80, NULL), 3);
	assert_int_equal(backends("10.96.0.2", 80, NULL), 2);
}

static void test_change_revisits_one_service(void **state)
{
	(void)state;
	slice("MODIFIED", "a-1", "a", 1, 4);
	assert_int_equal(sync_now(), 0);
	assert_false(last_all);
	assert_int_equal(rec.upserts, 1);
	assert_int_equal(rec.deletes, 0);
	assert_int_equal(backends("10.96.0.1", 80, NULL), 4);
	assert_int_equal(backends("10.96.0.2", 80, NULL), 2);
	/* Nothing changed: nothing written. */
	assert_int_equal(sync_now(), 0);
	assert_int_equal(rec.upserts + rec.deletes, 0);
	/* A second slice of the same Service adds to it. */
	slice("ADDED", "a-2", "a", 3, 2);
	assert_int_equal(sync_now(), 0);
	assert_int_equal(backends("10.96.0.1", 80, NULL), 6);
	slice("DELETED", "a-2", "a", 3, 2);
	assert_int_equal(sync_now(), 0);
	assert_int_equal(backends("10.96.0.1", 80, NULL), 4);
}

/* A list that brought nothing new: the next sync still revisits everything
 * (what cache_list_commit marks). */
static void relisted(void)
{
	pthread_mutex_lock(&cache.lock);
	cache.dirty_all = true;
	pthread_mutex_unlock(&cache.lock);
}

/* A partial sync looks at the changed Services only: with Maglev turned on
 * between syncs, every service differs from what the maps hold, yet a
 * change to a rewrites a alone; only a relist rewrites b. */
static void test_partial_sync_leaves_others_alone(void **state)
{
	struct rota_frontend fe_b = { .port = htons(80), .proto = IPPROTO_TCP };
	struct rota_service got;

	(void)state;
	inet_pton(AF_INET, "10.96.0.2", &fe_b.addr);
	rec.maglev = true;
	slice("MODIFIED", "a-1", "a", 1, 3);
	assert_int_equal(sync_now(), 0);
	assert_false(last_all);
	assert_int_equal(rec.upserts, 1);
	assert_int_equal(rota_svc_get(&dp, &fe_b, &got), 0);
	assert_false(got.maglev);
	rota_svc_free(&got);
	relisted();
	assert_int_equal(sync_now(), 0);
	assert_true(last_all);
	assert_int_equal(rec.upserts, 1);	/* b */
	assert_int_equal(rota_svc_get(&dp, &fe_b, &got), 0);
	assert_true(got.maglev);
	rota_svc_free(&got);
	/* Back as the later tests expect. */
	rec.maglev = false;
	slice("MODIFIED", "a-1", "a", 1, 4);
	relisted();
	assert_int_equal(sync_now(), 0);
	assert_int_equal(rec.upserts, 2);
	assert_int_equal(backends("10.96.0.1", 80, NULL), 4);
	assert_int_equal(backends("10.96.0.2", 80, NULL), 2);
}

static void test_slice_moving_updates_both(void **state)
{
	int third;

	(void)state;
	/* b-1 now says it belongs to a: b has no endpoints, a has both sets. */
	slice("MODIFIED", "b-1", "a", 2, 2);
	assert_int_equal(sync_now(), 0);
	assert_int_equal(rec.upserts, 2);
	assert_int_equal(backends("10.96.0.1", 80, NULL), 6);
	assert_int_equal(backends("10.96.0.2", 80, NULL), 0);
	slice("MODIFIED", "b-1", "b", 2, 2);
	assert_int_equal(sync_now(), 0);
	assert_int_equal(backends("10.96.0.1", 80, NULL), 4);
	assert_int_equal(backends("10.96.0.2", 80, &third), 2);
	assert_int_equal(third, 2);
}

static void test_deleted_service_goes(void **state)
{
	(void)state;
	service("DELETED", "b", "10.96.0.2", 80);
	assert_int_equal(sync_now(), 0);
	assert_int_equal(rec.deletes, 1);
	assert_int_equal(backends("10.96.0.2", 80, NULL), -1);
	assert_int_equal(backends("10.96.0.1", 80, NULL), 4);
	/* A port change is a delete and an add. */
	service("MODIFIED", "a", "10.96.0.1", 81);
	assert_int_equal(sync_now(), 0);
	assert_int_equal(rec.deletes, 1);
	assert_int_equal(rec.upserts, 1);
	assert_int_equal(backends("10.96.0.1", 80, NULL), -1);
	assert_int_equal(backends("10.96.0.1", 81, NULL), 4);
}

static void test_frontend_wanted_twice(void **state)
{
	int third;

	(void)state;
	/* c wants a's frontend: a keeps it, c waits. */
	service("ADDED", "c", "10.96.0.1", 81);
	slice("ADDED", "c-1", "c", 5, 1);
	assert_int_equal(sync_now(), 0);
	assert_int_equal(rec.upserts, 0);
	assert_int_equal(backends("10.96.0.1", 81, &third), 4);
	assert_int_equal(third, 1);
	/* An unrelated change: c still waits, a is not rewritten. */
	slice("MODIFIED", "a-1", "a", 1, 4);
	assert_int_equal(sync_now(), 0);
	assert_int_equal(rec.upserts, 0);
	/* a goes: c takes the frontend in the same sync, unchanged itself. */
	service("DELETED", "a", "10.96.0.1", 81);
	assert_int_equal(sync_now(), 0);
	assert_false(last_all);
	assert_int_equal(rec.deletes, 1);
	assert_int_equal(rec.upserts, 1);
	assert_int_equal(backends("10.96.0.1", 81, &third), 1);
	assert_int_equal(third, 5);
}

static void test_relist_removes_what_no_one_wants(void **state)
{
	struct rota_service stale = { .fe = { .port = htons(443), .proto = IPPROTO_TCP } };
	struct rota_svc_backend be = { .port = htons(8443) };
	char err[ROTA_ERR_LEN];
	struct cache_list l = { .kind = CACHE_SERVICES };

	(void)state;
	/* Something another writer left in the maps: the next list removes it. */
	inet_pton(AF_INET, "10.96.0.9", &stale.fe.addr);
	inet_pton(AF_INET, "10.9.9.9", &be.addr);
	stale.backends = &be;
	stale.n_backends = 1;
	assert_int_equal(rota_svc_upsert(&dp, &stale, err), 0);
	reconciler_free(&rec);
	assert_int_equal(reconciler_init(&rec, &dp, false), 0);	/* as after a restart */
	assert_int_equal(rec.n_services, 2);
	/* The list no longer has c (its delete event was missed). */
	cache_list_commit(&cache, &l);
	assert_int_equal(sync_now(), 0);
	assert_true(last_all);
	assert_int_equal(rec.deletes, 2);
	assert_int_equal(rec.upserts, 0);
	assert_int_equal(backends("10.96.0.9", 443, NULL), -1);
	assert_int_equal(backends("10.96.0.1", 81, NULL), -1);
	assert_int_equal(rec.n_services, 0);
}

static void test_adopted_entries_kept_unwritten(void **state)
{
	(void)state;
	service("ADDED", "d", "10.96.0.4", 80);
	slice("ADDED", "d-1", "d", 4, 3);
	assert_int_equal(sync_now(), 0);
	assert_int_equal(rec.upserts, 1);
	/* A restarted agent adopts d and writes nothing for it. */
	reconciler_free(&rec);
	assert_int_equal(reconciler_init(&rec, &dp, false), 0);
	listed();	/* empty lists would remove d: list d again instead */
	service("ADDED", "d", "10.96.0.4", 80);
	slice("ADDED", "d-1", "d", 4, 3);
	assert_int_equal(sync_now(), 0);
	assert_true(last_all);
	assert_int_equal(rec.upserts + rec.deletes, 0);
	assert_int_equal(backends("10.96.0.4", 80, NULL), 3);
	/* ... and owns it: a later change reaches it. */
	slice("MODIFIED", "d-1", "d", 4, 2);
	assert_int_equal(sync_now(), 0);
	assert_false(last_all);
	assert_int_equal(rec.upserts, 1);
	assert_int_equal(backends("10.96.0.4", 80, NULL), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_sync_writes_everything),
		cmocka_unit_test(test_change_revisits_one_service),
		cmocka_unit_test(test_partial_sync_leaves_others_alone),
		cmocka_unit_test(test_slice_moving_updates_both),
		cmocka_unit_test(test_deleted_service_goes),
		cmocka_unit_test(test_frontend_wanted_twice),
		cmocka_unit_test(test_relist_removes_what_no_one_wants),
		cmocka_unit_test(test_adopted_entries_kept_unwritten),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test_rotad_reconcile: needs root (bpffs, BPF maps); not run\n");
		return 77;
	}
	rota_log_init("test_rotad_reconcile", ROTA_LOG_WARN);
	atexit(unload);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	return cmocka_run_group_tests(tests, setup, teardown);
}
