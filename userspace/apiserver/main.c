/* main.c: rota-apiserver's command line: serve (the default), and
 * `snapshot save|restore FILE` over the same store flags. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <curl/curl.h>
#include "alloc.h"
#include "apiserver.h"
#include "log.h"
#include "util.h"

struct options {
	const char *data_dir;
	const char *etcd_servers;
	const char *etcd_prefix;
	const char *token_file;
	const char *client_ca_file;
	const char *kubeconfig_out;
	const char *enc_key_file;
	const char *tls_cert, *tls_key;
	const char *svc_range;
	const char *np_range;
	bool insecure_http;
	long long history;
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: rota-apiserver [flags]                   serve the Kubernetes API subset\n"
"       rota-apiserver snapshot save FILE [flags]  write every object to FILE\n"
"       rota-apiserver snapshot restore FILE [flags] replace every object with FILE's\n"
"\n"
"flags:\n"
"  --data-dir DIR                  state: sqlite store, pki/, admin.token (default /var/lib/rota-apiserver)\n"
"  --bind-address IP               listen address (default 127.0.0.1)\n"
"  --secure-port PORT              listen port (default 6443)\n"
"  --insecure-http                 plain HTTP without authentication instead of TLS; only with a\n"
"                                  loopback --bind-address (like kube-apiserver's old insecure port)\n"
"  --tls-cert-file F --tls-private-key-file F  serve this certificate instead of the generated one\n"
"  --token-auth-file F             CSV token,user,uid[,\"groups\"]; the admin token is always accepted\n"
"  --client-ca-file F              accept client certificates signed by a CA in F (PEM): the user is\n"
"                                  the subject's CN, its O entries the groups\n"
"  --kubeconfig-out F              write an admin kubeconfig for this server\n"
"  --service-cluster-ip-range CIDR (default 10.96.0.0/12)\n"
"  --service-node-port-range A-B   (default 30000-32767)\n"
"  --etcd-servers URL[,URL]        store in etcd v3 (JSON gateway) instead of sqlite\n"
"  --etcd-prefix P                 key prefix in etcd (default /registry)\n"
"  --encryption-key-file F         encrypt secrets at rest with AES-256-GCM (32 bytes, raw or base64)\n"
"  --watch-history N               revisions of history kept for watch resume (default 10000)\n"
"  --max-request-bytes N           request body limit (default 3145728)\n"
"  --bookmark-interval SECONDS     BOOKMARK period for watches that allow them (default 10)\n"
"  --max-connections N             open connections in all (default 4000)\n"
"  --max-connections-per-client N  open connections from one client address (default 1000)\n"
"  --request-header-timeout S      a connection's request headers must be in within S seconds of\n"
"                                  accept, or of the idle timeout after an answer (default 32)\n"
"  --idle-timeout S                close a connection silent for S seconds (default 60)\n"
"  --max-requests-inflight N       reads served at once; beyond, 429 + Retry-After (default 400)\n"
"  --max-mutating-requests-inflight N  writes served at once (default 200)\n"
"  -v, --v LEVEL                   log level warn|info|debug (default info)\n");
}

enum {
	OPT_DATA = 256, OPT_BIND, OPT_PORT, OPT_INSECURE, OPT_CERT, OPT_KEY, OPT_TOKENS,
	OPT_KCFG, OPT_SVC, OPT_NP, OPT_ETCD, OPT_ETCD_PREFIX, OPT_ENC, OPT_HIST, OPT_MAXB,
	OPT_BOOKMARK, OPT_CLIENT_CA, OPT_MAXCONN, OPT_MAXCONN_CLIENT, OPT_HDR_TIMEOUT, OPT_IDLE,
	OPT_INFLIGHT, OPT_INFLIGHT_MUT,
};

static const struct option longopts[] = {
	{ "data-dir", required_argument, NULL, OPT_DATA },
	{ "bind-address", required_argument, NULL, OPT_BIND },
	{ "secure-port", required_argument, NULL, OPT_PORT },
	{ "insecure-http", no_argument, NULL, OPT_INSECURE },
	{ "tls-cert-file", required_argument, NULL, OPT_CERT },
	{ "tls-private-key-file", required_argument, NULL, OPT_KEY },
	{ "token-auth-file", required_argument, NULL, OPT_TOKENS },
	{ "client-ca-file", required_argument, NULL, OPT_CLIENT_CA },
	{ "kubeconfig-out", required_argument, NULL, OPT_KCFG },
	{ "service-cluster-ip-range", required_argument, NULL, OPT_SVC },
	{ "service-node-port-range", required_argument, NULL, OPT_NP },
	{ "etcd-servers", required_argument, NULL, OPT_ETCD },
	{ "etcd-prefix", required_argument, NULL, OPT_ETCD_PREFIX },
	{ "encryption-key-file", required_argument, NULL, OPT_ENC },
	{ "watch-history", required_argument, NULL, OPT_HIST },
	{ "max-request-bytes", required_argument, NULL, OPT_MAXB },
	{ "bookmark-interval", required_argument, NULL, OPT_BOOKMARK },
	{ "max-connections", required_argument, NULL, OPT_MAXCONN },
	{ "max-connections-per-client", required_argument, NULL, OPT_MAXCONN_CLIENT },
	{ "request-header-timeout", required_argument, NULL, OPT_HDR_TIMEOUT },
	{ "idle-timeout", required_argument, NULL, OPT_IDLE },
	{ "max-requests-inflight", required_argument, NULL, OPT_INFLIGHT },
	{ "max-mutating-requests-inflight", required_argument, NULL, OPT_INFLIGHT_MUT },
	{ "v", required_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ 0 }
};

/* A positive count or number of seconds for flag; -EINVAL naming it. */
static int parse_positive(const char *flag, const char *v, unsigned *out)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || *end || !*v || *v == '-' || n == 0 || n > 1000000) {
		pr_warn("--%s %s: want a number from 1 to 1000000", flag, v);
		return -EINVAL;
	}
	*out = (unsigned)n;
	return 0;
}

static int parse_args(int argc, char **argv, struct apiserver *as, struct options *o)
{
	struct http_limits *l = &as->limits;
	int c;

	while ((c = getopt_long(argc, argv, "hv:", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_DATA: o->data_dir = optarg; break;
		case OPT_BIND: snprintf(as->bind_addr, sizeof(as->bind_addr), "%s", optarg); break;
		case OPT_PORT:
			as->port = atoi(optarg);
			if (as->port <= 0 || as->port > 65535) {
				pr_warn("--secure-port %s: not a port", optarg);
				return -EINVAL;
			}
			break;
		case OPT_INSECURE: o->insecure_http = true; break;
		case OPT_CERT: o->tls_cert = optarg; break;
		case OPT_KEY: o->tls_key = optarg; break;
		case OPT_TOKENS: o->token_file = optarg; break;
		case OPT_CLIENT_CA: o->client_ca_file = optarg; break;
		case OPT_KCFG: o->kubeconfig_out = optarg; break;
		case OPT_SVC: o->svc_range = optarg; break;
		case OPT_NP: o->np_range = optarg; break;
		case OPT_ETCD: o->etcd_servers = optarg; break;
		case OPT_ETCD_PREFIX: o->etcd_prefix = optarg; break;
		case OPT_ENC: o->enc_key_file = optarg; break;
		case OPT_HIST: o->history = atoll(optarg); break;
		case OPT_MAXB: as->max_body = strtoull(optarg, NULL, 10); break;
		case OPT_BOOKMARK: as->bookmark_secs = atoi(optarg) > 0 ? atoi(optarg) : 10; break;
		case OPT_MAXCONN: if (parse_positive("max-connections", optarg, &l->max_conns)) return -EINVAL; break;
		case OPT_MAXCONN_CLIENT:
			if (parse_positive("max-connections-per-client", optarg, &l->max_conns_per_client))
				return -EINVAL;
			break;
		case OPT_HDR_TIMEOUT:
			if (parse_positive("request-header-timeout", optarg, &l->header_timeout))
				return -EINVAL;
			break;
		case OPT_IDLE: if (parse_positive("idle-timeout", optarg, &l->idle_timeout)) return -EINVAL; break;
		case OPT_INFLIGHT:
			if (parse_positive("max-requests-inflight", optarg, &l->max_inflight))
				return -EINVAL;
			break;
		case OPT_INFLIGHT_MUT:
			if (parse_positive("max-mutating-requests-inflight", optarg, &l->max_mutating))
				return -EINVAL;
			break;
		case 'v': {
			enum rota_log_level l;

			if (rota_log_parse_level(optarg, &l)) {
				pr_warn("-v %s: want warn, info or debug", optarg);
				return -EINVAL;
			}
			rota_log_set_level(l);
			break;
		}
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -EINVAL;
		}
	}
	if (alloc_parse_cidr(o->svc_range, &as->svc_net, &as->svc_bits)) {
		pr_warn("--service-cluster-ip-range %s: want an IPv4 CIDR with a prefix of /8 to /30", o->svc_range);
		return -EINVAL;
	}
	snprintf(as->svc_cidr, sizeof(as->svc_cidr), "%s", o->svc_range);
	if (sscanf(o->np_range, "%d-%d", &as->np_lo, &as->np_hi) != 2 || as->np_lo < 1 ||
	    as->np_hi > 65535 || as->np_lo > as->np_hi) {
		pr_warn("--service-node-port-range %s: want LOW-HIGH", o->np_range);
		return -EINVAL;
	}
	if (strlen(o->etcd_prefix) > 100 || o->etcd_prefix[0] != '/') {
		pr_warn("--etcd-prefix %s: want an absolute key prefix of at most 100 bytes", o->etcd_prefix);
		return -EINVAL;
	}
	snprintf(as->prefix, sizeof(as->prefix), "%s", o->etcd_prefix);
	return 0;
}

static int open_store(struct apiserver *as, const struct options *o)
{
	char path[4096];

	if (mkdir(o->data_dir, 0700) && errno != EEXIST) {
		pr_warn("--data-dir %s: %s", o->data_dir, strerror(errno));
		return -errno;
	}
	if (o->etcd_servers) {
		char hub[300];

		snprintf(hub, sizeof(hub), "%s/", as->prefix);
		return store_etcd_open(o->etcd_servers, o->history, hub, &as->store);
	}
	snprintf(path, sizeof(path), "%s/state.db", o->data_dir);
	return store_sqlite_open(&(struct sqlite_opts){ .path = path, .history = o->history },
				 &as->store);
}

static bool is_loopback(const char *ip)
{
	struct in_addr a;

	return inet_pton(AF_INET, ip, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

static int do_serve(struct apiserver *as, struct options *o)
{
	char *cert = NULL, *key = NULL, *ca = NULL, token[65], server[128];
	struct MHD_Daemon *d = NULL;
	sigset_t set;
	int err, sig;

	as->tls = !o->insecure_http;
	if (o->insecure_http && !is_loopback(as->bind_addr)) {
		pr_warn("--insecure-http needs a loopback --bind-address (got %s): it serves the API without TLS or authentication",
			as->bind_addr);
		return -EINVAL;
	}
	if (o->insecure_http && o->client_ca_file) {
		pr_warn("--client-ca-file needs TLS: it cannot go with --insecure-http");
		return -EINVAL;
	}
	if (o->client_ca_file && (err = client_ca_load(as, o->client_ca_file)))
		return err;
	err = open_store(as, o);
	if (err)
		return err;
	if (o->enc_key_file && (err = crypt_load_key(as, o->enc_key_file)))
		goto out;
	err = admin_token(o->data_dir, token);
	if (err)
		goto out;
	err = tokens_add(&as->tokens, token, "admin", "admin", "system:masters");
	if (!err && o->token_file)
		err = tokens_load(&as->tokens, o->token_file);
	if (err)
		goto out;
	if (as->tls) {
		if (o->tls_cert || o->tls_key) {
			if (!o->tls_cert || !o->tls_key) {
				pr_warn("--tls-cert-file and --tls-private-key-file go together");
				err = -EINVAL;
				goto out;
			}
			if ((err = read_file(o->tls_cert, &cert, NULL)) || (err = read_file(o->tls_key, &key, NULL))) {
				pr_warn("read TLS certificate/key: %s", strerror(-err));
				goto out;
			}
			ca = strdup(cert);
		} else {
			err = tls_ensure(o->data_dir, as->bind_addr, as->svc_net + 1, &cert, &key, &ca);
			if (err)
				goto out;
		}
	}
	err = rest_bootstrap(as);
	if (err) {
		pr_warn("bootstrap default namespaces and the kubernetes Service: %s", strerror(-err));
		goto out;
	}
	/* Signals go to sigwait below, not to MHD's threads. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	err = http_start(as, cert, key, &d);
	if (err)
		goto out;
	snprintf(server, sizeof(server), "%s://%s:%d", as->tls ? "https" : "http",
		 strcmp(as->bind_addr, "0.0.0.0") ? as->bind_addr : "127.0.0.1", as->port);
	if (o->kubeconfig_out && (err = kubeconfig_write(o->kubeconfig_out, server, as->tls ? ca : NULL, token)))
		goto out;
	as->ready = 1;
	pr_info("serving on %s (store %s)", server, as->store->ops->name);
	sigwait(&set, &sig);
	pr_info("signal %d: shutting down", sig);
	as->ready = 0;
	as->stopping = 1;
out:
	http_stop(as, d);
	if (as->store)
		as->store->ops->close(as->store);
	tokens_free(as->tokens);
	client_ca_free(as);
	free(cert);
	free(key);
	free(ca);
	return err;
}

static int do_snapshot(struct apiserver *as, struct options *o, const char *verb, const char *file)
{
	char prefix[300];
	int err = open_store(as, o);

	if (err)
		return err;
	snprintf(prefix, sizeof(prefix), "%s/", as->prefix);
	if (!strcmp(verb, "save")) {
		err = store_snapshot_save(as->store, prefix, file);
	} else if (!strcmp(verb, "restore")) {
		err = store_snapshot_restore(as->store, prefix, file);
	} else {
		pr_warn("snapshot %s: want save or restore", verb);
		err = -EINVAL;
	}
	as->store->ops->close(as->store);
	return err;
}

int main(int argc, char **argv)
{
	struct apiserver as = {
		.port = 6443, .np_lo = 30000, .np_hi = 32767, .max_body = 3 * 1024 * 1024,
		.bookmark_secs = 10, .bind_addr = "127.0.0.1",
		/* kube-apiserver's: 32 s ReadHeaderTimeout, 400/200 requests in flight */
		.limits = { .max_conns = 4000, .max_conns_per_client = 1000, .header_timeout = 32,
			    .idle_timeout = 60, .max_inflight = 400, .max_mutating = 200 },
	};
	struct options o = {
		.data_dir = "/var/lib/rota-apiserver", .etcd_prefix = "/registry",
		.svc_range = "10.96.0.0/12", .np_range = "30000-32767",
	};
	const char *verb = NULL, *file = NULL;
	int err;

	rota_log_init("rota-apiserver", ROTA_LOG_INFO);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (argc > 1 && !strcmp(argv[1], "snapshot")) {
		if (argc < 4) {
			usage(stderr);
			return 2;
		}
		verb = argv[2];
		file = argv[3];
		argv += 3;
		argc -= 3;
	}
	err = parse_args(argc, argv, &as, &o);
	if (err)
		return 2;
	if (optind < argc) {
		pr_warn("unexpected argument %s", argv[optind]);
		usage(stderr);
		return 2;
	}
	err = verb ? do_snapshot(&as, &o, verb, file) : do_serve(&as, &o);
	curl_global_cleanup();
	return err ? 1 : 0;
}
