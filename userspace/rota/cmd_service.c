/* rota service add/del/list and rota backend list. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include "cli.h"
#include "addr.h"
#include "svc.h"
#include "log.h"

static const char *svc_mode(const struct rota_service *s)
{
	return s->maglev ? "maglev" : "random";
}

/* The MODE column: the Maglev table's size with it, e.g. maglev(1021). */
static const char *svc_mode_text(const struct rota_service *s, char buf[24])
{
	if (!s->maglev || !s->maglev_m)
		return svc_mode(s);
	snprintf(buf, 24, "maglev(%u)", s->maglev_m);
	return buf;
}

static int service_add(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv)
{
	struct rota_service s = {};
	char err[ROTA_ERR_LEN] = "";
	struct rota_dp dp;
	int ret = 1;

	if (argc < 3)
		return cli_usage_error(cmd, "service add needs a frontend VIP:PORT/PROTO");
	if (rota_parse_frontend(argv[2], &s.fe, err)) {
		fprintf(stderr, "rota: %s\n", err);
		return 1;
	}
	s.backends = calloc((size_t)argc, sizeof(*s.backends));
	if (!s.backends)
		return 1;
	for (int i = 3; i < argc; i++) {
		struct rota_svc_backend *b;
		bool terminating = false;

		if (!strcmp(argv[i], "--maglev")) {
			s.maglev = true;
			continue;
		}
		if (!strcmp(argv[i], "--affinity")) {
			if (i + 1 >= argc || cli_parse_u32(argv[i + 1], 1, 86400, &s.affinity_timeout)) {
				fprintf(stderr, "rota: --affinity \"%s\": must be 1-86400 seconds\n",
					i + 1 < argc ? argv[i + 1] : "");
				goto out;
			}
			i++;
			continue;
		}
		if (!strcmp(argv[i], "--terminating")) {
			if (i + 1 >= argc) {
				fprintf(stderr, "rota: --terminating needs BACKEND:PORT\n");
				goto out;
			}
			terminating = true;
			i++;
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "rota: unknown option \"%s\"\n", argv[i]);
			goto out;
		}
		b = &s.backends[s.n_backends];
		if (rota_parse_addr_port(argv[i], "backend", &b->addr, &b->port, err)) {
			fprintf(stderr, "rota: %s\n", err);
			goto out;
		}
		b->terminating = terminating;
		s.n_backends++;
	}
	if (rota_dp_open(&dp, cli->bpffs_dir))
		goto out;
	if (rota_svc_upsert(&dp, &s, err))
		fprintf(stderr, "rota: %s\n", err);
	else
		ret = 0;
	rota_dp_close(&dp);
out:
	rota_svc_free(&s);
	return ret;
}

static int service_del(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv)
{
	struct rota_frontend fe;
	char err[ROTA_ERR_LEN], f[ROTA_ADDR_STR_LEN];
	struct rota_dp dp;
	int ret;

	if (argc != 3)
		return cli_usage_error(cmd, "service del takes exactly one frontend");
	if (rota_parse_frontend(argv[2], &fe, err)) {
		fprintf(stderr, "rota: %s\n", err);
		return 1;
	}
	if (rota_dp_open(&dp, cli->bpffs_dir))
		return 1;
	ret = rota_svc_delete(&dp, &fe);
	if (ret == -ENOENT)
		fprintf(stderr, "rota: service %s: not found\n", rota_fmt_frontend(f, &fe));
	else if (ret)
		fprintf(stderr, "rota: delete service %s: %s\n", rota_fmt_frontend(f, &fe), strerror(-ret));
	rota_dp_close(&dp);
	return ret ? 1 : 0;
}

static cJSON *service_json(const struct rota_service *s)
{
	char buf[ROTA_ADDR_STR_LEN];
	cJSON *o = cJSON_CreateObject(), *bs = cJSON_CreateArray();

	cJSON_AddStringToObject(o, "frontend", rota_fmt_frontend(buf, &s->fe));
	cJSON_AddStringToObject(o, "address", rota_fmt_addr(buf, s->fe.addr));
	cJSON_AddNumberToObject(o, "port", ntohs(s->fe.port));
	cJSON_AddStringToObject(o, "protocol", rota_proto_name(s->fe.proto));
	cJSON_AddNumberToObject(o, "id", s->svc_id);
	cJSON_AddStringToObject(o, "type", "ClusterIP");
	cJSON_AddStringToObject(o, "mode", svc_mode(s));
	if (s->maglev)
		cJSON_AddNumberToObject(o, "maglevTableSize", s->maglev_m);	/* 0: no table (no active backend) */
	cJSON_AddNumberToObject(o, "affinityTimeoutSeconds", s->affinity_timeout);
	for (size_t i = 0; i < s->n_backends; i++) {
		cJSON *b = cJSON_CreateObject();

		cJSON_AddNumberToObject(b, "id", s->backends[i].id);
		cJSON_AddStringToObject(b, "address", rota_fmt_addr(buf, s->backends[i].addr));
		cJSON_AddNumberToObject(b, "port", ntohs(s->backends[i].port));
		cJSON_AddStringToObject(b, "state", s->backends[i].terminating ? "terminating" : "active");
		cJSON_AddItemToArray(bs, b);
	}
	cJSON_AddItemToObject(o, "backends", bs);
	return o;
}

static int service_list(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv)
{
	struct rota_service *list;
	struct rota_dp dp;
	size_t n;
	int err;

	if (argc != 2)
		return cli_usage_error(cmd, "service list takes no arguments");
	if (rota_dp_open(&dp, cli->bpffs_dir))
		return 1;
	err = rota_svc_list(&dp, &list, &n);
	rota_dp_close(&dp);
	if (err) {
		fprintf(stderr, "rota: read services: %s\n", strerror(-err));
		return 1;
	}
	if (cli->json) {
		cJSON *arr = cJSON_CreateArray();

		for (size_t i = 0; i < n; i++)
			cJSON_AddItemToArray(arr, service_json(&list[i]));
		err = cli_print_json(arr);
	} else {
		printf("%-24s %-8s %-14s %-9s %s\n", "FRONTEND", "ID", "MODE", "AFFINITY", "BACKENDS");
		for (size_t i = 0; i < n; i++) {
			char f[ROTA_ADDR_STR_LEN], b[ROTA_ADDR_STR_LEN], aff[16] = "-", mode[24];

			if (list[i].affinity_timeout)
				snprintf(aff, sizeof(aff), "%us", list[i].affinity_timeout);
			printf("%-24s %-8u %-14s %-9s", rota_fmt_frontend(f, &list[i].fe), list[i].svc_id,
			       svc_mode_text(&list[i], mode), aff);
			if (!list[i].n_backends)
				printf(" (none: rejected)");
			for (size_t j = 0; j < list[i].n_backends; j++)
				printf("%s%s%s", j ? ", " : " ",
				       rota_fmt_addr_port(b, list[i].backends[j].addr, list[i].backends[j].port),
				       list[i].backends[j].terminating ? " (terminating)" : "");
			printf("\n");
		}
	}
	rota_svc_list_free(list, n);
	return err ? 1 : 0;
}

int do_service(struct cli *cli, int argc, char **argv)
{
	const struct cli_cmd *cmd = cli_find("service");

	if (argc < 2)
		return cli_usage_error(cmd, "missing subcommand");
	if (!strcmp(argv[1], "add"))
		return service_add(cli, cmd, argc, argv);
	if (!strcmp(argv[1], "del") || !strcmp(argv[1], "delete"))
		return service_del(cli, cmd, argc, argv);
	if (!strcmp(argv[1], "list") || !strcmp(argv[1], "ls"))
		return service_list(cli, cmd, argc, argv);
	return cli_usage_error(cmd, "unknown subcommand \"%s\"", argv[1]);
}

/* Every backend with the service it serves. */
int do_backend(struct cli *cli, int argc, char **argv)
{
	const struct cli_cmd *cmd = cli_find("backend");
	struct rota_service *list;
	struct rota_dp dp;
	cJSON *arr = NULL;
	size_t n;
	int err;

	if (argc != 2 || strcmp(argv[1], "list"))
		return cli_usage_error(cmd, "expected \"backend list\"");
	if (rota_dp_open(&dp, cli->bpffs_dir))
		return 1;
	err = rota_svc_list(&dp, &list, &n);
	rota_dp_close(&dp);
	if (err) {
		fprintf(stderr, "rota: read services: %s\n", strerror(-err));
		return 1;
	}
	if (cli->json)
		arr = cJSON_CreateArray();
	else
		printf("%-8s %-22s %-5s %-12s %s\n", "ID", "BACKEND", "PROTO", "STATE", "SERVICE");
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < list[i].n_backends; j++) {
			const struct rota_svc_backend *b = &list[i].backends[j];
			char a[ROTA_ADDR_STR_LEN], f[ROTA_ADDR_STR_LEN];
			const char *state = b->terminating ? "terminating" : "active";

			if (arr) {
				cJSON *o = cJSON_CreateObject();

				cJSON_AddNumberToObject(o, "id", b->id);
				cJSON_AddStringToObject(o, "address", rota_fmt_addr(a, b->addr));
				cJSON_AddNumberToObject(o, "port", ntohs(b->port));
				cJSON_AddStringToObject(o, "protocol", rota_proto_name(list[i].fe.proto));
				cJSON_AddStringToObject(o, "state", state);
				cJSON_AddStringToObject(o, "service", rota_fmt_frontend(f, &list[i].fe));
				cJSON_AddNumberToObject(o, "serviceId", list[i].svc_id);
				cJSON_AddItemToArray(arr, o);
			} else {
				printf("%-8u %-22s %-5s %-12s %s\n", b->id, rota_fmt_addr_port(a, b->addr, b->port),
				       rota_proto_name(list[i].fe.proto), state, rota_fmt_frontend(f, &list[i].fe));
			}
		}
	}
	rota_svc_list_free(list, n);
	return arr && cli_print_json(arr) ? 1 : 0;
}
