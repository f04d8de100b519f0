/* CNI GC (1.1.0): everything of this network that the runtime's list of
 * valid attachments does not name goes, in four passes: attachments with a
 * record (torn down like DEL); host veths this network made that have no
 * record left (found by name and alias, torn down from what the link and
 * the endpoint map still say); datapath state of veths that are gone
 * altogether (tc link pins, endpoint entries); then addresses (built-in
 * allocations not listed are released; a 1.1.0 delegate gets GC). */
#include <stdio.h>
#include <string.h>
#include "cni.h"

struct gc_ctx {
	struct cni_conf *c;
	const struct cni_env *e;
	const cJSON *valid;
	int failed;
};

/* An entry without ifname stands for every interface of that container. */
bool gc_attachment_valid(const cJSON *valid, const char *cid, const char *ifname)
{
	const cJSON *a;

	cJSON_ArrayForEach(a, valid) {
		const cJSON *ci = cJSON_GetObjectItem(a, "containerID"), *in = cJSON_GetObjectItem(a, "ifname");

		if (cJSON_IsString(ci) && !strcmp(ci->valuestring, cid) &&
		    (!cJSON_IsString(in) || !strcmp(in->valuestring, ifname)))
			return true;
	}
	return false;
}

/* For a veth whose alias names only the network: is its name the hash of
 * a valid attachment? (Entries without ifname cannot be hashed: such a
 * container keeps every veth that could be its own.) */
static bool host_name_valid(const cJSON *valid, const char *name)
{
	const cJSON *a;
	char h[16];

	cJSON_ArrayForEach(a, valid) {
		const cJSON *ci = cJSON_GetObjectItem(a, "containerID"), *in = cJSON_GetObjectItem(a, "ifname");

		if (!cJSON_IsString(ci))
			continue;
		if (!cJSON_IsString(in))
			return true;
		net_host_name(ci->valuestring, in->valuestring, h);
		if (!strcmp(h, name))
			return true;
	}
	return false;
}

static void gc_failed(struct gc_ctx *g, const char *what)
{
	fprintf(stderr, "rota-cni: GC: %s: %s\n", what, cni_error_msg());
	g->failed++;
	cni_error_clear();
}

static int gc_record(const struct att_rec *r, void *arg)
{
	struct gc_ctx *g = arg;
	char what[300];

	if (gc_attachment_valid(g->valid, r->cid, r->ifname))
		return 0;
	if (attachment_teardown(g->c, g->e, r->cid, r->ifname, r->ip, true)) {
		snprintf(what, sizeof(what), "%s/%s", r->cid, r->ifname);
		gc_failed(g, what);
	}
	return 0;
}

/* A host veth left without a record (the record was lost, or the veth
 * outlived a DEL that failed half-way). Only veths whose alias names this
 * network are ours to judge: another rota network on the node has its own
 * list of valid attachments. */
static int gc_link(const struct host_veth *v, void *arg)
{
	struct gc_ctx *g = arg;
	char cid[256], ifname[16], what[300];
	in_addr_t ip;
	int ifindex;

	if (!v->alias || state_alias_parse(g->c, v->alias, cid, ifname))
		return 0;
	if (cid[0] ? gc_attachment_valid(g->valid, cid, ifname) : host_name_valid(g->valid, v->name))
		return 0;
	/* Gone since the listing (the record pass removed it)? */
	if (net_host_link(v->name, &ifindex) || ifindex != v->ifindex)
		return 0;
	if (cid[0]) {
		/* The alias names the attachment: DEL it with what is left (its
		 * address comes from the endpoint entry; a delegate gets DEL). */
		if (attachment_teardown(g->c, g->e, cid, ifname, 0, true)) {
			snprintf(what, sizeof(what), "%s/%s (%s, no record)", cid, ifname, v->name);
			gc_failed(g, what);
		}
		return 0;
	}
	/* Alias too long to name the attachment: the link and the datapath go
	 * here, the address in the IPAM pass. */
	ip = dp_endpoint_of(g->c, v->ifindex);
	dp_unwire(g->c, v->ifindex, ip);
	if (net_del_host(v->name)) {
		cni_error(ROTA_ERR_NETLINK, "delete %s", v->name);
		gc_failed(g, v->name);
		return 0;
	}
	fprintf(stderr, "rota-cni: GC: removed host veth %s (no record)\n", v->name);
	return 0;
}

int cmd_gc(struct cni_conf *c, const struct cni_env *e)
{
	const cJSON *valid = cJSON_GetObjectItem(c->root, "cni.dev/valid-attachments");
	struct gc_ctx g = { c, e, NULL, 0 };
	int err;

	if (c->version < 10100)
		return cni_error(CNI_ERR_INCOMPATIBLE_VERSION, "GC needs cniVersion 1.1.0 (got %s)", c->cni_version);
	if (!valid)
		valid = cJSON_GetObjectItem(c->root, "cni.dev/attachments");
	if (!cJSON_IsArray(valid))
		return cni_error(CNI_ERR_INVALID_CONFIG,
				 "GC needs cni.dev/valid-attachments (or cni.dev/attachments) as an array");
	g.valid = valid;
	if (state_foreach(c, gc_record, &g) < 0)
		return cni_error(CNI_ERR_IO, "list %s/attachments", c->data_dir);
	err = net_foreach_host_veth(gc_link, &g);
	if (err < 0)
		return cni_error(ROTA_ERR_NETLINK, "list host veths: %s", strerror(-err));
	dp_gc(c);
	if (ipam_gc(c, e, valid))
		gc_failed(&g, "IPAM");
	if (g.failed)
		return cni_error(ROTA_ERR_NETLINK, "GC: %d attachment(s) could not be removed (see the log)", g.failed);
	return 0;
}
