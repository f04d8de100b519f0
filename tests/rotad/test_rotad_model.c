/* Unit tests for rotad's Service and EndpointSlice model (model.c): which
 * Services are proxied, ports and protocols, the EndpointSlice condition
 * defaults, addresses[0] and nodeName, session affinity and
 * internalTrafficPolicy, which endpoints back a Service port
 * (svc_port_backends), and one log line naming the object and the field for
 * every malformed part (the rest of the object still counts). */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include "model.h"
#include "log.h"

/* ---- capturing what the parser logs (it writes to stderr) */

static char logbuf[16384];
static FILE *cap_file;
static int cap_saved = -1;

static void capture_begin(void)
{
	fflush(stderr);
	cap_file = tmpfile();
	assert_non_null(cap_file);
	cap_saved = dup(STDERR_FILENO);
	assert_true(cap_saved >= 0);
	assert_true(dup2(fileno(cap_file), STDERR_FILENO) >= 0);
}

static const char *capture_end(void)
{
	size_t n;

	fflush(stderr);
	dup2(cap_saved, STDERR_FILENO);
	close(cap_saved);
	cap_saved = -1;
	rewind(cap_file);
	n = fread(logbuf, 1, sizeof(logbuf) - 1, cap_file);
	logbuf[n] = '\0';
	fclose(cap_file);
	cap_file = NULL;
	return logbuf;
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* Every needle on one line of the log. */
static void assert_logged(const char *log, const char *const *needles)
{
	const char *line = log;

	while (*line) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		char buf[1024];
		bool all = true;

		snprintf(buf, sizeof(buf), "%.*s", (int)len, line);
		for (const char *const *n = needles; *n; n++)
			if (!strstr(buf, *n))
				all = false;
		if (all)
			return;
		line += len + (end ? 1 : 0);
	}
	fprintf(stderr, "no log line holds all of:");
	for (const char *const *n = needles; *n; n++)
		fprintf(stderr, " [%s]", *n);
	fprintf(stderr, "\nlog was:\n%s\n", log);
	fail();
}
#define LOGGED(log, ...) assert_logged(log, (const char *const[]){ __VA_ARGS__, NULL })

/* ---- helpers */

static cJSON *parse_json(const char *s)
{
	cJSON *j = cJSON_Parse(s);

	if (!j)
		fail_msg("bad JSON in test: %s", s);
	return j;
}

/* Parses a Service; expects success; returns what the parser logged. */
static const char *svc(const char *json, struct svc_obj *out)
{
	cJSON *j = parse_json(json);
	int err;

	capture_begin();
	err = svc_parse(j, out);
	capture_end();
	cJSON_Delete(j);
	assert_int_equal(err, 0);
	return logbuf;
}

/* The node the parser is told it runs on. */
#define THIS_NODE "node-a"

static const char *slice(const char *json, struct slice_obj *out)
{
	cJSON *j = parse_json(json);
	int err;

	capture_begin();
	err = slice_parse(j, THIS_NODE, out);
	capture_end();
	cJSON_Delete(j);
	assert_int_equal(err, 0);
	return logbuf;
}

static __be32 ip(const char *s)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a.s_addr;
}

#define SVC_MD(name) "\"metadata\":{\"name\":\"" name "\",\"namespace\":\"ns1\"}"

/* ---- Services */

static void test_svc_basic_ports(void **state)
{
	struct svc_obj s;
	const char *log = svc("{" SVC_MD("web") ",\"spec\":{\"type\":\"ClusterIP\",\"clusterIP\":\"10.96.0.10\","
			      "\"ports\":[{\"name\":\"http\",\"port\":80,\"protocol\":\"TCP\",\"targetPort\":8080},"
			      "{\"name\":\"dns\",\"port\":53,\"protocol\":\"UDP\"},"
			      "{\"name\":\"noproto\",\"port\":443}]}}", &s);

	assert_string_equal(log, "");
	assert_string_equal(s.key, "ns1/web");
	assert_true(s.proxied);
	assert_int_equal(s.cluster_ip, ip("10.96.0.10"));
	assert_int_equal(s.affinity_timeout, 0);
	assert_int_equal(s.n_ports, 3);
	assert_string_equal(s.ports[0].name, "http");
	assert_int_equal(s.ports[0].port, 80);	/* the service port, not targetPort */
	assert_int_equal(s.ports[0].proto, IPPROTO_TCP);
	assert_string_equal(s.ports[1].name, "dns");
	assert_int_equal(s.ports[1].port, 53);
	assert_int_equal(s.ports[1].proto, IPPROTO_UDP);
	/* protocol absent: TCP, the API default */
	assert_int_equal(s.ports[2].port, 443);
	assert_int_equal(s.ports[2].proto, IPPROTO_TCP);
	svc_obj_free(&s);
}

static void test_svc_unnamed_single_port(void **state)
{
	struct svc_obj s;

	svc("{" SVC_MD("one") ",\"spec\":{\"clusterIP\":\"10.96.0.11\",\"ports\":[{\"port\":8080}]}}", &s);
	assert_true(s.proxied);
	assert_int_equal(s.n_ports, 1);
	assert_string_equal(s.ports[0].name, "");
	assert_int_equal(s.ports[0].port, 8080);
	svc_obj_free(&s);
}

/* Other service types still have a ClusterIP that rota serves. */
static void test_svc_nodeport_lb_have_clusterip(void **state)
{
	struct svc_obj s;

	svc("{" SVC_MD("np") ",\"spec\":{\"type\":\"NodePort\",\"clusterIP\":\"10.96.0.12\","
	    "\"ports\":[{\"port\":80,\"nodePort\":30080}]}}", &s);
	assert_true(s.proxied);
	assert_int_equal(s.cluster_ip, ip("10.96.0.12"));
	svc_obj_free(&s);
	svc("{" SVC_MD("lb") ",\"spec\":{\"type\":\"LoadBalancer\",\"clusterIP\":\"10.96.0.13\","
	    "\"ports\":[{\"port\":80,\"nodePort\":30081}]}}", &s);
	assert_true(s.proxied);
	svc_obj_free(&s);
}

static void test_svc_not_proxied(void **state)
{
	static const char *const cases[] = {
		/* headless */
		"{" SVC_MD("h") ",\"spec\":{\"clusterIP\":\"None\",\"ports\":[{\"port\":80}]}}",
		/* ExternalName */
		"{" SVC_MD("x") ",\"spec\":{\"type\":\"ExternalName\",\"externalName\":\"example.com\"}}",
		/* ExternalName, even with a clusterIP left in the object */
		"{" SVC_MD("x2") ",\"spec\":{\"type\":\"ExternalName\",\"clusterIP\":\"10.96.0.20\","
		"\"ports\":[{\"port\":80}]}}",
		/* another proxy's service */
		"{\"metadata\":{\"name\":\"p\",\"namespace\":\"ns1\",\"labels\":"
		"{\"service.kubernetes.io/service-proxy-name\":\"other\"}},"
		"\"spec\":{\"clusterIP\":\"10.96.0.21\",\"ports\":[{\"port\":80}]}}",
		/* labelled headless (even with an empty value) */
		"{\"metadata\":{\"name\":\"hl\",\"namespace\":\"ns1\",\"labels\":"
		"{\"service.kubernetes.io/headless\":\"\"}},"
		"\"spec\":{\"clusterIP\":\"10.96.0.22\",\"ports\":[{\"port\":80}]}}",
		/* no clusterIP at all, or an empty one */
		"{" SVC_MD("n") ",\"spec\":{\"ports\":[{\"port\":80}]}}",
		"{" SVC_MD("e") ",\"spec\":{\"clusterIP\":\"\",\"ports\":[{\"port\":80}]}}",
		/* IPv6 ClusterIP: comes with the IPv6 datapath, silently */
		"{" SVC_MD("v6") ",\"spec\":{\"clusterIP\":\"fd00::10\",\"ports\":[{\"port\":80}]}}",
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct svc_obj s;
		const char *log = svc(cases[i], &s);

		if (s.proxied)
			fail_msg("case %zu should not be proxied: %s", i, cases[i]);
		assert_int_equal(s.cluster_ip, 0);
		/* Not proxying these is normal: no warning. */
		if (*log)
			fail_msg("case %zu logged: %s", i, log);
		svc_obj_free(&s);
	}
}

static void test_svc_bad_clusterip_logged(void **state)
{
	struct svc_obj s;
	const char *log = svc("{" SVC_MD("bad") ",\"spec\":{\"clusterIP\":\"10.96.0.300\",\"ports\":[{\"port\":80}]}}",
			      &s);

	assert_false(s.proxied);
	LOGGED(log, "ns1/bad", "spec.clusterIP", "10.96.0.300");
	assert_int_equal(count_lines(log), 1);
	svc_obj_free(&s);
}

static void test_svc_affinity(void **state)
{
	struct svc_obj s;

	/* ClientIP without a config: the API default of 10800 s */
	svc("{" SVC_MD("a") ",\"spec\":{\"clusterIP\":\"10.96.0.30\",\"sessionAffinity\":\"ClientIP\","
	    "\"ports\":[{\"port\":80}]}}", &s);
	assert_int_equal(s.affinity_timeout, 10800);
	svc_obj_free(&s);
	/* config without timeoutSeconds */
	svc("{" SVC_MD("a") ",\"spec\":{\"clusterIP\":\"10.96.0.30\",\"sessionAffinity\":\"ClientIP\","
	    "\"sessionAffinityConfig\":{\"clientIP\":{}},\"ports\":[{\"port\":80}]}}", &s);
	assert_int_equal(s.affinity_timeout, 10800);
	svc_obj_free(&s);
	/* explicit timeout */
	svc("{" SVC_MD("a") ",\"spec\":{\"clusterIP\":\"10.96.0.30\",\"sessionAffinity\":\"ClientIP\","
	    "\"sessionAffinityConfig\":{\"clientIP\":{\"timeoutSeconds\":60}},\"ports\":[{\"port\":80}]}}", &s);
	assert_int_equal(s.affinity_timeout, 60);
	svc_obj_free(&s);
	/* the API's maximum */
	svc("{" SVC_MD("a") ",\"spec\":{\"clusterIP\":\"10.96.0.30\",\"sessionAffinity\":\"ClientIP\","
	    "\"sessionAffinityConfig\":{\"clientIP\":{\"timeoutSeconds\":86400}},\"ports\":[{\"port\":80}]}}", &s);
	assert_int_equal(s.affinity_timeout, 86400);
	svc_obj_free(&s);
	/* out of the API's range: the default */
	svc("{" SVC_MD("a") ",\"spec\":{\"clusterIP\":\"10.96.0.30\",\"sessionAffinity\":\"ClientIP\","
	    "\"sessionAffinityConfig\":{\"clientIP\":{\"timeoutSeconds\":0}},\"ports\":[{\"port\":80}]}}", &s);
	assert_int_equal(s.affinity_timeout, 10800);
	svc_obj_free(&s);
	/* None, and a config without ClientIP: no affinity */
	svc("{" SVC_MD("a") ",\"spec\":{\"clusterIP\":\"10.96.0.30\",\"sessionAffinity\":\"None\","
	    "\"sessionAffinityConfig\":{\"clientIP\":{\"timeoutSeconds\":60}},\"ports\":[{\"port\":80}]}}", &s);
	assert_int_equal(s.affinity_timeout, 0);
	svc_obj_free(&s);
	svc("{" SVC_MD("a") ",\"spec\":{\"clusterIP\":\"10.96.0.30\",\"ports\":[{\"port\":80}]}}", &s);
	assert_int_equal(s.affinity_timeout, 0);
	svc_obj_free(&s);
}

/* A bad port is skipped with a line naming the service and the field; the
 * service and its other ports stay. */
static void test_svc_bad_ports_skipped(void **state)
{
	struct svc_obj s;
	const char *log = svc("{" SVC_MD("mixed") ",\"spec\":{\"clusterIP\":\"10.96.0.40\",\"ports\":["
			      "{\"name\":\"zero\",\"port\":0},"
			      "{\"name\":\"big\",\"port\":65536},"
			      "{\"name\":\"frac\",\"port\":80.5},"
			      "{\"name\":\"str\",\"port\":\"80\"},"
			      "{\"name\":\"none\"},"
			      "{\"name\":\"neg\",\"port\":-1},"
			      "{\"name\":\"sctp\",\"port\":9,\"protocol\":\"SCTP\"},"
			      "{\"name\":\"weird\",\"port\":10,\"protocol\":\"FOO\"},"
			      "{\"name\":\"good\",\"port\":81},"
			      "{\"name\":\"max\",\"port\":65535,\"protocol\":\"UDP\"}]}}", &s);

	assert_true(s.proxied);
	assert_int_equal(s.n_ports, 2);
	assert_string_equal(s.ports[0].name, "good");
	assert_int_equal(s.ports[0].port, 81);
	assert_string_equal(s.ports[1].name, "max");
	assert_int_equal(s.ports[1].port, 65535);
	assert_int_equal(s.ports[1].proto, IPPROTO_UDP);
	LOGGED(log, "ns1/mixed", "ports[0].port", "0");
	LOGGED(log, "ns1/mixed", "ports[1].port", "65536");
	LOGGED(log, "ns1/mixed", "ports[2].port", "80.5");
	LOGGED(log, "ns1/mixed", "ports[3].port");
	LOGGED(log, "ns1/mixed", "ports[4].port", "missing");
	LOGGED(log, "ns1/mixed", "ports[5].port", "-1");
	LOGGED(log, "ns1/mixed", "protocol", "SCTP");
	LOGGED(log, "ns1/mixed", "protocol", "FOO");
	assert_int_equal(count_lines(log), 8);
	svc_obj_free(&s);
}

static void test_svc_no_ports(void **state)
{
	struct svc_obj s;

	svc("{" SVC_MD("np") ",\"spec\":{\"clusterIP\":\"10.96.0.41\"}}", &s);
	assert_true(s.proxied);
	assert_int_equal(s.n_ports, 0);
	svc_obj_free(&s);
}

static void test_missing_name_fails(void **state)
{
	struct svc_obj s;
	struct slice_obj e;
	char key[OBJ_KEY_LEN];
	cJSON *j = parse_json("{\"metadata\":{\"namespace\":\"ns1\"},\"spec\":{\"clusterIP\":\"10.96.0.1\"}}");

	assert_int_equal(svc_parse(j, &s), -EINVAL);
	svc_obj_free(&s);
	assert_int_equal(slice_parse(j, THIS_NODE, &e), -EINVAL);
	slice_obj_free(&e);
	assert_int_equal(obj_key(j, key), -EINVAL);
	cJSON_Delete(j);
	j = parse_json("{\"metadata\":{\"name\":\"\",\"namespace\":\"ns1\"}}");
	assert_int_equal(obj_key(j, key), -EINVAL);
	cJSON_Delete(j);
	j = parse_json("{\"metadata\":{\"name\":\"n\",\"namespace\":\"ns1\"}}");
	assert_int_equal(obj_key(j, key), 0);
	assert_string_equal(key, "ns1/n");
	cJSON_Delete(j);
}

/* ---- EndpointSlices */

#define SLICE_MD(name, svcname) \
	"\"metadata\":{\"name\":\"" name "\",\"namespace\":\"ns1\",\"labels\":{\"kubernetes.io/service-name\":\"" \
	svcname "\"}},\"addressType\":\"IPv4\""

static void test_slice_basic(void **state)
{
	struct slice_obj e;
	const char *log = slice("{" SLICE_MD("web-abc", "web") ","
				"\"ports\":[{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"},"
				"{\"name\":\"dns\",\"port\":5353,\"protocol\":\"UDP\"},{\"name\":\"p\",\"port\":9}],"
				"\"endpoints\":[{\"addresses\":[\"10.244.1.2\"],\"conditions\":{\"ready\":true}},"
				"{\"addresses\":[\"10.244.1.3\"]}]}", &e);

	assert_string_equal(log, "");
	assert_string_equal(e.key, "ns1/web-abc");
	assert_string_equal(e.svc_key, "ns1/web");
	assert_true(e.ipv4);
	assert_true(e.trigger_time == 0);
	assert_int_equal(e.n_ports, 3);
	assert_string_equal(e.ports[0].name, "http");
	assert_int_equal(e.ports[0].port, 8080);
	assert_int_equal(e.ports[0].proto, IPPROTO_TCP);
	assert_int_equal(e.ports[1].proto, IPPROTO_UDP);
	assert_int_equal(e.ports[2].proto, IPPROTO_TCP);	/* protocol absent: TCP */
	assert_int_equal(e.n_eps, 2);
	assert_int_equal(e.eps[0].addr, ip("10.244.1.2"));
	assert_int_equal(e.eps[1].addr, ip("10.244.1.3"));
	slice_obj_free(&e);
}

/* ready unset → ready; serving unset → the ready value (discovery/v1:
 * "If nil, consumers should defer to the ready condition"); terminating
 * unset → not terminating. Case 8 (ready=false, terminating=true, serving
 * unset) is where reading a nil serving as true would differ. */
static void test_slice_condition_defaults(void **state)
{
	struct slice_obj e;

	slice("{" SLICE_MD("c", "web") ",\"ports\":[{\"port\":80}],\"endpoints\":["
	      "{\"addresses\":[\"10.0.0.1\"]},"					/* 0: nothing */
	      "{\"addresses\":[\"10.0.0.2\"],\"conditions\":{}},"			/* 1: empty */
	      "{\"addresses\":[\"10.0.0.3\"],\"conditions\":{\"ready\":false}},"	/* 2 */
	      "{\"addresses\":[\"10.0.0.4\"],\"conditions\":{\"ready\":false,\"serving\":true,\"terminating\":true}},"
	      "{\"addresses\":[\"10.0.0.5\"],\"conditions\":{\"ready\":false,\"serving\":false,\"terminating\":true}},"
	      "{\"addresses\":[\"10.0.0.6\"],\"conditions\":{\"serving\":false}},"	/* 5: ready unset */
	      "{\"addresses\":[\"10.0.0.7\"],\"conditions\":{\"ready\":true,\"serving\":true,\"terminating\":false}},"
	      "{\"addresses\":[\"10.0.0.8\"],\"conditions\":{\"terminating\":true}},"	/* 7 */
	      "{\"addresses\":[\"10.0.0.9\"],\"conditions\":{\"ready\":false,\"terminating\":true}}"	/* 8 */
	      "]}", &e);
	assert_int_equal(e.n_eps, 9);
	/* 0, 1: all unset */
	for (int i = 0; i < 2; i++) {
		assert_true(e.eps[i].ready);
		assert_true(e.eps[i].serving);
		assert_false(e.eps[i].terminating);
	}
	/* 2: not ready, serving unset follows ready */
	assert_false(e.eps[2].ready);
	assert_false(e.eps[2].serving);
	assert_false(e.eps[2].terminating);
	/* 3: terminating but still serving */
	assert_false(e.eps[3].ready);
	assert_true(e.eps[3].serving);
	assert_true(e.eps[3].terminating);
	/* 4: terminating, no longer serving */
	assert_false(e.eps[4].ready);
	assert_false(e.eps[4].serving);
	assert_true(e.eps[4].terminating);
	/* 5: ready unset is ready, whatever serving says */
	assert_true(e.eps[5].ready);
	assert_false(e.eps[5].serving);
	/* 6: explicit */
	assert_true(e.eps[6].ready);
	assert_true(e.eps[6].serving);
	assert_false(e.eps[6].terminating);
	/* 7: terminating with ready unset */
	assert_true(e.eps[7].ready);
	assert_true(e.eps[7].serving);
	assert_true(e.eps[7].terminating);
	/* 8: terminating, not ready, serving unset: follows ready */
	assert_false(e.eps[8].ready);
	assert_false(e.eps[8].serving);
	assert_true(e.eps[8].terminating);
	slice_obj_free(&e);
}

static void test_slice_invalid_addresses_skipped(void **state)
{
	struct slice_obj e;
	const char *log = slice("{" SLICE_MD("bad-addr", "web") ",\"ports\":[{\"name\":\"http\",\"port\":8080}],"
				"\"endpoints\":["
				"{\"addresses\":[\"10.0.0.300\"]},"
				"{\"addresses\":[\"10.0.0.2\"]},"
				"{\"addresses\":[\"not-an-ip\"]},"
				"{\"addresses\":[\"10.0.0.3\"],\"conditions\":{\"ready\":false}},"
				"{\"addresses\":[\"fd00::1\"]},"
				"{\"addresses\":[42]},"
				"{\"addresses\":[\"\"]},"
				"{\"addresses\":[\" 10.0.0.9\"]}"
				"]}", &e);

	/* The valid endpoints stay, with their own conditions. */
	assert_int_equal(e.n_eps, 2);
	assert_int_equal(e.eps[0].addr, ip("10.0.0.2"));
	assert_true(e.eps[0].ready);
	assert_int_equal(e.eps[1].addr, ip("10.0.0.3"));
	assert_false(e.eps[1].ready);
	assert_int_equal(e.n_ports, 1);
	LOGGED(log, "ns1/bad-addr", "endpoints[0].addresses[0]", "10.0.0.300", "skipping that endpoint");
	LOGGED(log, "ns1/bad-addr", "endpoints[2].addresses[0]", "not-an-ip");
	LOGGED(log, "ns1/bad-addr", "endpoints[4].addresses[0]", "fd00::1");
	LOGGED(log, "ns1/bad-addr", "endpoints[5].addresses[0]");
	LOGGED(log, "ns1/bad-addr", "endpoints[6].addresses[0]");
	LOGGED(log, "ns1/bad-addr", "endpoints[7].addresses[0]");
	assert_int_equal(count_lines(log), 6);
	slice_obj_free(&e);
}

static void test_slice_bad_ports_skipped(void **state)
{
	struct slice_obj e;
	const char *log = slice("{" SLICE_MD("bad-port", "web") ",\"ports\":["
				"{\"name\":\"zero\",\"port\":0},"
				"{\"name\":\"all\"},"	/* nil port: "all ports", not served */
				"{\"name\":\"sctp\",\"port\":9,\"protocol\":\"SCTP\"},"
				"{\"name\":\"http\",\"port\":8080}],"
				"\"endpoints\":[{\"addresses\":[\"10.0.0.2\"]}]}", &e);

	assert_int_equal(e.n_ports, 1);
	assert_string_equal(e.ports[0].name, "http");
	assert_int_equal(e.ports[0].port, 8080);
	assert_int_equal(e.n_eps, 1);
	LOGGED(log, "ns1/bad-port", "ports[0].port", "0");
	LOGGED(log, "ns1/bad-port", "ports[1].port", "missing");
	LOGGED(log, "ns1/bad-port", "protocol", "SCTP");
	assert_int_equal(count_lines(log), 3);
	slice_obj_free(&e);
}

static void test_slice_not_ours(void **state)
{
	struct slice_obj e;

	/* no service-name label: belongs to no service */
	slice("{\"metadata\":{\"name\":\"orphan\",\"namespace\":\"ns1\"},\"addressType\":\"IPv4\","
	      "\"ports\":[{\"port\":80}],\"endpoints\":[{\"addresses\":[\"10.0.0.1\"]}]}", &e);
	assert_string_equal(e.svc_key, "");
	slice_obj_free(&e);
	/* another proxy's, or a headless service's */
	slice("{\"metadata\":{\"name\":\"other\",\"namespace\":\"ns1\",\"labels\":{\"kubernetes.io/service-name\":\"web\","
	      "\"service.kubernetes.io/service-proxy-name\":\"x\"}},\"addressType\":\"IPv4\","
	      "\"ports\":[{\"port\":80}],\"endpoints\":[{\"addresses\":[\"10.0.0.1\"]}]}", &e);
	assert_string_equal(e.svc_key, "");
	slice_obj_free(&e);
	slice("{\"metadata\":{\"name\":\"hl\",\"namespace\":\"ns1\",\"labels\":{\"kubernetes.io/service-name\":\"web\","
	      "\"service.kubernetes.io/headless\":\"\"}},\"addressType\":\"IPv4\","
	      "\"ports\":[{\"port\":80}],\"endpoints\":[{\"addresses\":[\"10.0.0.1\"]}]}", &e);
	assert_string_equal(e.svc_key, "");
	slice_obj_free(&e);
	/* IPv6 and FQDN slices carry no IPv4 endpoints (and log nothing) */
	assert_string_equal(slice("{\"metadata\":{\"name\":\"v6\",\"namespace\":\"ns1\",\"labels\":"
				  "{\"kubernetes.io/service-name\":\"web\"}},\"addressType\":\"IPv6\","
				  "\"ports\":[{\"port\":80}],\"endpoints\":[{\"addresses\":[\"fd00::1\"]}]}", &e), "");
	assert_false(e.ipv4);
	assert_int_equal(e.n_eps, 0);
	assert_string_equal(e.svc_key, "ns1/web");
	slice_obj_free(&e);
	assert_string_equal(slice("{\"metadata\":{\"name\":\"f\",\"namespace\":\"ns1\",\"labels\":"
				  "{\"kubernetes.io/service-name\":\"web\"}},\"addressType\":\"FQDN\","
				  "\"ports\":[{\"port\":80}],\"endpoints\":[{\"addresses\":[\"example.com\"]}]}", &e), "");
	assert_false(e.ipv4);
	assert_int_equal(e.n_eps, 0);
	slice_obj_free(&e);
}

static void test_slice_empty(void **state)
{
	struct slice_obj e;

	/* a service scaled to zero: no endpoints, ports may be absent or null */
	slice("{" SLICE_MD("empty", "web") ",\"ports\":null,\"endpoints\":null}", &e);
	assert_int_equal(e.n_eps, 0);
	assert_int_equal(e.n_ports, 0);
	slice_obj_free(&e);
	slice("{" SLICE_MD("empty2", "web") "}", &e);
	assert_int_equal(e.n_eps, 0);
	assert_int_equal(e.n_ports, 0);
	slice_obj_free(&e);
}

static void test_slice_trigger_time(void **state)
{
	struct slice_obj e;

	slice("{\"metadata\":{\"name\":\"t\",\"namespace\":\"ns1\",\"labels\":{\"kubernetes.io/service-name\":\"web\"},"
	      "\"annotations\":{\"endpoints.kubernetes.io/last-change-trigger-time\":\"2024-01-02T03:04:05Z\"}},"
	      "\"addressType\":\"IPv4\"}", &e);
	assert_true(fabs(e.trigger_time - 1704164645.0) < 1e-6);
	slice_obj_free(&e);
	/* RFC 3339 with nanoseconds, as the EndpointSlice controller writes it */
	slice("{\"metadata\":{\"name\":\"t\",\"namespace\":\"ns1\",\"labels\":{\"kubernetes.io/service-name\":\"web\"},"
	      "\"annotations\":{\"endpoints.kubernetes.io/last-change-trigger-time\":"
	      "\"2024-01-02T03:04:05.250000000Z\"}},\"addressType\":\"IPv4\"}", &e);
	assert_true(fabs(e.trigger_time - 1704164645.25) < 1e-6);
	slice_obj_free(&e);
	slice("{\"metadata\":{\"name\":\"t\",\"namespace\":\"ns1\",\"labels\":{\"kubernetes.io/service-name\":\"web\"},"
	      "\"annotations\":{\"endpoints.kubernetes.io/last-change-trigger-time\":\"yesterday\"}},"
	      "\"addressType\":\"IPv4\"}", &e);
	assert_true(e.trigger_time == 0);
	slice_obj_free(&e);
}

/* kube-proxy uses addresses[0] of each endpoint and nothing else: the
 * other addresses neither add backends nor rescue an invalid first one. */
static void test_slice_first_address_only(void **state)
{
	struct slice_obj e;
	const char *log = slice("{" SLICE_MD("multi", "web") ",\"ports\":[{\"port\":80}],\"endpoints\":["
				"{\"addresses\":[\"10.0.0.1\",\"10.0.0.2\",\"10.0.0.3\"]},"
				"{\"addresses\":[\"bogus\",\"10.0.0.4\"]},"
				"{\"addresses\":[]},"
				"{\"conditions\":{\"ready\":true}},"
				"{\"addresses\":[\"10.0.0.5\",\"not-checked\"]}"
				"]}", &e);

	assert_int_equal(e.n_eps, 2);
	assert_int_equal(e.eps[0].addr, ip("10.0.0.1"));
	assert_int_equal(e.eps[1].addr, ip("10.0.0.5"));
	LOGGED(log, "ns1/multi", "endpoints[1].addresses[0]", "bogus", "skipping that endpoint");
	LOGGED(log, "ns1/multi", "endpoints[2].addresses is empty");
	LOGGED(log, "ns1/multi", "endpoints[3].addresses is empty");
	/* Addresses after the first are not looked at, valid or not. */
	assert_null(strstr(log, "not-checked"));
	assert_int_equal(count_lines(log), 3);
	slice_obj_free(&e);
}

/* nodeName equal to the node rotad runs on makes an endpoint local. */
static void test_slice_node_local(void **state)
{
	struct slice_obj e;
	cJSON *j;

	slice("{" SLICE_MD("n", "web") ",\"ports\":[{\"port\":80}],\"endpoints\":["
	      "{\"addresses\":[\"10.0.0.1\"],\"nodeName\":\"" THIS_NODE "\"},"
	      "{\"addresses\":[\"10.0.0.2\"],\"nodeName\":\"node-b\"},"
	      "{\"addresses\":[\"10.0.0.3\"]},"
	      "{\"addresses\":[\"10.0.0.4\"],\"nodeName\":\"node-a-2\"},"
	      "{\"addresses\":[\"10.0.0.5\"],\"nodeName\":\"NODE-A\"}"
	      "]}", &e);
	assert_int_equal(e.n_eps, 5);
	assert_true(e.eps[0].local);
	assert_false(e.eps[1].local);
	assert_false(e.eps[2].local);	/* no nodeName: not local */
	assert_false(e.eps[3].local);	/* exact match only */
	assert_false(e.eps[4].local);
	slice_obj_free(&e);
	/* Without a node name nothing is local. */
	j = parse_json("{" SLICE_MD("n", "web") ",\"endpoints\":[{\"addresses\":[\"10.0.0.1\"],"
		       "\"nodeName\":\"" THIS_NODE "\"}]}");
	assert_int_equal(slice_parse(j, NULL, &e), 0);
	assert_int_equal(e.n_eps, 1);
	assert_false(e.eps[0].local);
	slice_obj_free(&e);
	cJSON_Delete(j);
}

static void test_svc_internal_traffic_policy(void **state)
{
	struct svc_obj s;

	svc("{" SVC_MD("l") ",\"spec\":{\"clusterIP\":\"10.96.0.60\",\"internalTrafficPolicy\":\"Local\","
	    "\"ports\":[{\"port\":80}]}}", &s);
	assert_true(s.itp_local);
	assert_true(s.proxied);
	svc_obj_free(&s);
	svc("{" SVC_MD("c") ",\"spec\":{\"clusterIP\":\"10.96.0.61\",\"internalTrafficPolicy\":\"Cluster\","
	    "\"ports\":[{\"port\":80}]}}", &s);
	assert_false(s.itp_local);
	svc_obj_free(&s);
	svc("{" SVC_MD("d") ",\"spec\":{\"clusterIP\":\"10.96.0.62\",\"ports\":[{\"port\":80}]}}", &s);
	assert_false(s.itp_local);	/* unset: Cluster, the API default */
	svc_obj_free(&s);
	/* externalTrafficPolicy is about NodePort/LoadBalancer traffic: it does
	 * not restrict the ClusterIP. */
	svc("{" SVC_MD("e") ",\"spec\":{\"type\":\"NodePort\",\"clusterIP\":\"10.96.0.63\","
	    "\"externalTrafficPolicy\":\"Local\",\"ports\":[{\"port\":80}]}}", &s);
	assert_false(s.itp_local);
	svc_obj_free(&s);
}

/* ---- svc_port_backends: which endpoints back a Service port */

struct port_case {
	struct svc_obj svc;
	struct slice_obj slices[3];
	const struct slice_obj *ptrs[3];
	size_t n_slices;
};

/* Parses a Service and up to 3 slices (NULL-terminated). */
static void port_case(struct port_case *pc, const char *svc_json, const char *const *slice_json)
{
	memset(pc, 0, sizeof(*pc));
	svc(svc_json, &pc->svc);
	for (; *slice_json; slice_json++, pc->n_slices++) {
		slice(*slice_json, &pc->slices[pc->n_slices]);
		pc->ptrs[pc->n_slices] = &pc->slices[pc->n_slices];
	}
}

static void port_case_free(struct port_case *pc)
{
	svc_obj_free(&pc->svc);
	for (size_t i = 0; i < pc->n_slices; i++)
		slice_obj_free(&pc->slices[i]);
}

/* "A:PORT/STATE,..." of the backends of Service port idx. */
static const char *backends_str(const struct port_case *pc, size_t idx)
{
	static char out[1024];
	struct rota_svc_backend *b;
	size_t n, len = 0;

	assert_true(idx < pc->svc.n_ports);
	assert_int_equal(svc_port_backends(&pc->svc, &pc->svc.ports[idx], pc->ptrs, pc->n_slices, &b, &n), 0);
	assert_non_null(b);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		char a[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &b[i].addr, a, sizeof(a));
		len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%s:%u/%s", i ? "," : "", a, ntohs(b[i].port),
					b[i].terminating ? "terminating" : "active");
	}
	free(b);
	return out;
}

#define EP(addr, node, conds) "{\"addresses\":[\"" addr "\"],\"nodeName\":\"" node "\"" conds "}"
#define READY ""
#define NOT_READY ",\"conditions\":{\"ready\":false,\"serving\":false}"
#define TERMINATING ",\"conditions\":{\"ready\":false,\"serving\":true,\"terminating\":true}"
#define TERM_SERVING_UNSET ",\"conditions\":{\"ready\":false,\"terminating\":true}"

/* internalTrafficPolicy Cluster: every slice's endpoints, matched by port
 * name and protocol, merged, sorted, without duplicates. */
static void test_backends_cluster_policy(void **state)
{
	struct port_case pc;

	port_case(&pc, "{" SVC_MD("web") ",\"spec\":{\"clusterIP\":\"10.96.0.70\",\"ports\":["
		  "{\"name\":\"http\",\"port\":80},{\"name\":\"dns\",\"port\":53,\"protocol\":\"UDP\"}]}}",
		  (const char *const[]){
			  "{" SLICE_MD("web-1", "web") ",\"ports\":[{\"name\":\"http\",\"port\":8080},"
			  "{\"name\":\"dns\",\"port\":5353,\"protocol\":\"UDP\"}],\"endpoints\":["
			  EP("10.0.0.3", "node-b", READY) "," EP("10.0.0.1", THIS_NODE, READY) ","
			  EP("10.0.0.2", "node-b", NOT_READY) "]}",
			  /* a second slice: only http, and 10.0.0.1 again */
			  "{" SLICE_MD("web-2", "web") ",\"ports\":[{\"name\":\"http\",\"port\":8080}],\"endpoints\":["
			  EP("10.0.0.4", "node-c", READY) "," EP("10.0.0.1", THIS_NODE, READY) "]}",
			  NULL });
	assert_string_equal(backends_str(&pc, 0),
			    "10.0.0.1:8080/active,10.0.0.3:8080/active,10.0.0.4:8080/active");
	assert_string_equal(backends_str(&pc, 1), "10.0.0.1:5353/active,10.0.0.3:5353/active");
	port_case_free(&pc);
}

/* internalTrafficPolicy Local: only this node's endpoints; none → no backend
 * (the datapath refuses), even though other nodes have ready ones. */
static void test_backends_local_policy(void **state)
{
	struct port_case pc;
	const char *svc_local = "{" SVC_MD("loc") ",\"spec\":{\"clusterIP\":\"10.96.0.71\","
				"\"internalTrafficPolicy\":\"Local\",\"ports\":[{\"name\":\"http\",\"port\":80}]}}";

	port_case(&pc, svc_local, (const char *const[]){
		"{" SLICE_MD("loc-1", "loc") ",\"ports\":[{\"name\":\"http\",\"port\":8080}],\"endpoints\":["
		EP("10.0.0.1", "node-b", READY) "," EP("10.0.0.2", THIS_NODE, READY) ","
		EP("10.0.0.3", THIS_NODE, NOT_READY) "," EP("10.0.0.4", "node-c", READY) "]}",
		"{" SLICE_MD("loc-2", "loc") ",\"ports\":[{\"name\":\"http\",\"port\":8080}],\"endpoints\":["
		EP("10.0.0.5", THIS_NODE, READY) "]}",
		NULL });
	assert_string_equal(backends_str(&pc, 0), "10.0.0.2:8080/active,10.0.0.5:8080/active");
	port_case_free(&pc);

	/* No local endpoint at all: empty, not the other nodes' ones. */
	port_case(&pc, svc_local, (const char *const[]){
		"{" SLICE_MD("loc-1", "loc") ",\"ports\":[{\"name\":\"http\",\"port\":8080}],\"endpoints\":["
		EP("10.0.0.1", "node-b", READY) "," EP("10.0.0.4", "node-c", READY) "]}",
		NULL });
	assert_string_equal(backends_str(&pc, 0), "");
	port_case_free(&pc);

	/* Local endpoints only terminating: they serve (the fallback looks at
	 * this node's endpoints only, whatever other nodes have ready). */
	port_case(&pc, svc_local, (const char *const[]){
		"{" SLICE_MD("loc-1", "loc") ",\"ports\":[{\"name\":\"http\",\"port\":8080}],\"endpoints\":["
		EP("10.0.0.1", "node-b", READY) "," EP("10.0.0.2", THIS_NODE, TERMINATING) "]}",
		NULL });
	assert_string_equal(backends_str(&pc, 0), "10.0.0.2:8080/active");
	port_case_free(&pc);

	/* The same slices under policy Cluster: the ready remote one is active,
	 * the terminating local one only keeps its flows. */
	port_case(&pc, "{" SVC_MD("loc") ",\"spec\":{\"clusterIP\":\"10.96.0.71\","
		  "\"ports\":[{\"name\":\"http\",\"port\":80}]}}", (const char *const[]){
		"{" SLICE_MD("loc-1", "loc") ",\"ports\":[{\"name\":\"http\",\"port\":8080}],\"endpoints\":["
		EP("10.0.0.1", "node-b", READY) "," EP("10.0.0.2", THIS_NODE, TERMINATING) "]}",
		NULL });
	assert_string_equal(backends_str(&pc, 0), "10.0.0.1:8080/active,10.0.0.2:8080/terminating");
	port_case_free(&pc);
}

/* serving unset defers to ready: a terminating endpoint with ready=false and
 * no serving condition is not serving, so it is neither kept nor used as a
 * fallback (the service refuses). */
static void test_backends_serving_unset_is_ready(void **state)
{
	struct port_case pc;

	port_case(&pc, "{" SVC_MD("t") ",\"spec\":{\"clusterIP\":\"10.96.0.72\",\"ports\":[{\"port\":80}]}}",
		  (const char *const[]){
			  "{" SLICE_MD("t-1", "t") ",\"ports\":[{\"port\":8080}],\"endpoints\":["
			  EP("10.0.0.1", "node-b", TERM_SERVING_UNSET) "]}",
			  NULL });
	assert_string_equal(backends_str(&pc, 0), "");
	port_case_free(&pc);
	/* With serving=true it is the fallback. */
	port_case(&pc, "{" SVC_MD("t") ",\"spec\":{\"clusterIP\":\"10.96.0.72\",\"ports\":[{\"port\":80}]}}",
		  (const char *const[]){
			  "{" SLICE_MD("t-1", "t") ",\"ports\":[{\"port\":8080}],\"endpoints\":["
			  EP("10.0.0.1", "node-b", TERM_SERVING_UNSET) "," EP("10.0.0.2", "node-b", TERMINATING) "]}",
			  NULL });
	assert_string_equal(backends_str(&pc, 0), "10.0.0.2:8080/active");
	port_case_free(&pc);
}

/* Free twice (the cache frees objects whose parse failed): no double free. */
static void test_free_idempotent(void **state)
{
	struct svc_obj s;
	struct slice_obj e;

	svc("{" SVC_MD("f") ",\"spec\":{\"clusterIP\":\"10.96.0.50\",\"ports\":[{\"port\":80}]}}", &s);
	svc_obj_free(&s);
	svc_obj_free(&s);
	slice("{" SLICE_MD("f", "f") ",\"ports\":[{\"port\":80}],\"endpoints\":[{\"addresses\":[\"10.0.0.1\"]}]}", &e);
	slice_obj_free(&e);
	slice_obj_free(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_svc_basic_ports),
		cmocka_unit_test(test_svc_unnamed_single_port),
		cmocka_unit_test(test_svc_nodeport_lb_have_clusterip),
		cmocka_unit_test(test_svc_not_proxied),
		cmocka_unit_test(test_svc_bad_clusterip_logged),
		cmocka_unit_test(test_svc_affinity),
		cmocka_unit_test(test_svc_bad_ports_skipped),
		cmocka_unit_test(test_svc_no_ports),
		cmocka_unit_test(test_missing_name_fails),
		cmocka_unit_test(test_slice_basic),
		cmocka_unit_test(test_slice_condition_defaults),
		cmocka_unit_test(test_slice_invalid_addresses_skipped),
		cmocka_unit_test(test_slice_bad_ports_skipped),
		cmocka_unit_test(test_slice_not_ours),
		cmocka_unit_test(test_slice_empty),
		cmocka_unit_test(test_slice_trigger_time),
		cmocka_unit_test(test_slice_first_address_only),
		cmocka_unit_test(test_slice_node_local),
		cmocka_unit_test(test_svc_internal_traffic_policy),
		cmocka_unit_test(test_backends_cluster_policy),
		cmocka_unit_test(test_backends_local_policy),
		cmocka_unit_test(test_backends_serving_unset_is_ready),
		cmocka_unit_test(test_free_idempotent),
	};

	rota_log_init("rotad", ROTA_LOG_INFO);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
