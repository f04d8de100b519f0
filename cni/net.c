/* Netlink through libnl-route-3: the veth pair, the pod's /32 and default
 * route via the link-local gateway, the host route, static neighbours, and
 * the listing of host veths for GC. One socket per netns, opened on first
 * use and kept for the whole call: a socket stays bound to the netns it was
 * opened in, so we setns() only around socket creation. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/ip.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/inet.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/route.h>
#include "cni.h"

static int host_ns = -1;

/* The call's sockets: one in the host netns, one in the pod's (which pod
 * netns it is bound to: device and inode of the netns file). */
static struct nl_sock *host_sk, *pod_sk;
static dev_t pod_sk_dev;
static ino_t pod_sk_ino;

int net_init(void)
{
	host_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	return host_ns < 0 ? -errno : 0;
}

int net_open_netns(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

/* "rota" + 11 hex digits (44 bits) of FNV-1a 64 over containerID "/"
 * ifname: 15 characters, stable across versions. */
void net_host_name(const char *cid, const char *ifname, char out[16])
{
	unsigned long long h = 0xcbf29ce484222325ULL;
	const char *parts[3] = { cid, "/", ifname };

	for (int i = 0; i < 3; i++)
		for (const unsigned char *p = (const unsigned char *)parts[i]; *p; p++)
			h = (h ^ *p) * 0x100000001b3ULL;
	snprintf(out, 16, "%s%011llx", ROTA_CNI_HOST_PREFIX, (h ^ (h >> 44)) & 0xfffffffffffULL);
}

static struct nl_sock *sock_in(int nsfd)
{
	struct nl_sock *sk = nl_socket_alloc();

	if (!sk)
		return NULL;
	if (nsfd >= 0 && setns(nsfd, CLONE_NEWNET) < 0)
		goto fail;
	if (nl_connect(sk, NETLINK_ROUTE) < 0) {
		if (nsfd >= 0)
			setns(host_ns, CLONE_NEWNET);
		goto fail;
	}
	if (nsfd >= 0 && setns(host_ns, CLONE_NEWNET) < 0) {
		/* Cannot go home: nothing else may run in the pod's netns. */
		fprintf(stderr, "rota-cni: setns back to the host netns: %s\n", strerror(errno));
		_exit(1);
	}
	return sk;
fail:
	nl_socket_free(sk);
	return NULL;
}

static struct nl_sock *host_sock(void)
{
	if (!host_sk)
		host_sk = sock_in(-1);
	return host_sk;
}

static struct nl_sock *pod_sock(int nsfd)
{
	struct stat st;

	if (fstat(nsfd, &st) < 0)
		return NULL;
	if (pod_sk && pod_sk_dev == st.st_dev && pod_sk_ino == st.st_ino)
		return pod_sk;
	if (pod_sk)
		nl_socket_free(pod_sk);
	pod_sk = sock_in(nsfd);
	pod_sk_dev = st.st_dev;
	pod_sk_ino = st.st_ino;
	return pod_sk;
}

static struct nl_addr *addr4(in_addr_t a, int prefix)
{
	struct nl_addr *n = nl_addr_build(AF_INET, &a, 4);

	if (n)
		nl_addr_set_prefixlen(n, prefix);
	return n;
}

int net_pod_exists(int nsfd, const char *ifname)
{
	struct nl_sock *sk = pod_sock(nsfd);
	struct rtnl_link *l = NULL;
	int err;

	if (!sk)
		return -EIO;
	err = rtnl_link_get_kernel(sk, 0, ifname, &l);
	if (l)
		rtnl_link_put(l);
	return err == 0 ? 1 : err == -NLE_OBJ_NOTFOUND || err == -NLE_NODEV ? 0 : -EIO;
}

static int get_link(struct nl_sock *sk, const char *name, int *ifindex, unsigned char mac[6])
{
	struct rtnl_link *l = NULL;
	struct nl_addr *a;
	int err = rtnl_link_get_kernel(sk, 0, name, &l);

	if (err < 0)
		return err;
	*ifindex = rtnl_link_get_ifindex(l);
	a = rtnl_link_get_addr(l);
	if (mac && a && nl_addr_get_len(a) == 6)
		memcpy(mac, nl_addr_get_binary_addr(a), 6);
	rtnl_link_put(l);
	return 0;
}

static int neigh_add(struct nl_sock *sk, int ifindex, in_addr_t ip, const unsigned char mac[6])
{
	struct rtnl_neigh *n = rtnl_neigh_alloc();
	struct nl_addr *dst = addr4(ip, 32), *ll = nl_addr_build(AF_LLC, mac, 6);
	int err = -NLE_NOMEM;

	if (n && dst && ll) {
		rtnl_neigh_set_ifindex(n, ifindex);
		rtnl_neigh_set_dst(n, dst);
		rtnl_neigh_set_lladdr(n, ll);
		rtnl_neigh_set_state(n, NUD_PERMANENT);
		err = rtnl_neigh_add(sk, n, NLM_F_CREATE | NLM_F_REPLACE);
	}
	nl_addr_put(dst);
	nl_addr_put(ll);
	rtnl_neigh_put(n);
	return err;
}

/* dst/prefix via gw (0: directly on the link) out of ifindex. */
static int route_add(struct nl_sock *sk, int ifindex, in_addr_t dst, int prefix, in_addr_t gw)
{
	struct rtnl_route *r = rtnl_route_alloc();
	struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
	struct nl_addr *d = addr4(dst, prefix), *g = gw ? addr4(gw, 32) : NULL;
	int err = -NLE_NOMEM;

	if (!r || !nh || !d || (gw && !g)) {
		if (nh)
			rtnl_route_nh_free(nh);
		goto out;
	}
	rtnl_route_set_family(r, AF_INET);
	rtnl_route_set_table(r, RT_TABLE_MAIN);
	rtnl_route_set_protocol(r, RTPROT_BOOT);
	rtnl_route_set_scope(r, gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK);
	rtnl_route_set_type(r, RTN_UNICAST);
	rtnl_route_set_dst(r, d);
	rtnl_route_nh_set_ifindex(nh, ifindex);
	if (g) {
		rtnl_route_nh_set_gateway(nh, g);
		rtnl_route_nh_set_flags(nh, RTNH_F_ONLINK);
	}
	rtnl_route_add_nexthop(r, nh);	/* r owns nh now */
	err = rtnl_route_add(sk, r, NLM_F_CREATE | NLM_F_REPLACE);
out:
	nl_addr_put(d);
	nl_addr_put(g);
	rtnl_route_put(r);
	return err;
}

static void sysctl_write(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (write(fd, val, strlen(val)) < 0) {
			/* best effort */
		}
		close(fd);
	}
}

int net_add(int nsfd, const char *ifname, const char *host_name, int mtu, in_addr_t ip,
	    const char *alias, struct pod_link *out)
{
	struct nl_sock *hs, *ps;
	struct rtnl_link *veth = NULL, *peer;
	struct rtnl_addr *a = NULL;
	struct nl_addr *la = NULL;
	in_addr_t gw = inet_addr(ROTA_CNI_GATEWAY);
	char path[128];
	int err, ret = -1;

	memset(out, 0, sizeof(*out));
	snprintf(out->host_name, sizeof(out->host_name), "%s", host_name);
	hs = host_sock();
	ps = pod_sock(nsfd);
	if (!hs || !ps) {
		cni_error(ROTA_ERR_NETLINK, "netlink socket: %s", strerror(errno));
		goto out;
	}
	veth = rtnl_link_veth_alloc();
	if (!veth)
		goto nomem;
	/* One queue each way, asked for up front. Left to the kernel, each end
	 * gets one queue per CPU and is then cut to one, and each cut waits for
	 * an RCU grace period under the RTNL lock: the slowest step of an ADD,
	 * and it queues every concurrent ADD on the node behind it. */
	rtnl_link_set_name(veth, host_name);
	rtnl_link_set_num_tx_queues(veth, 1);
	rtnl_link_set_num_rx_queues(veth, 1);
	if (mtu)
		rtnl_link_set_mtu(veth, (unsigned)mtu);
	peer = rtnl_link_veth_get_peer(veth);
	rtnl_link_set_name(peer, ifname);
	rtnl_link_set_ns_fd(peer, nsfd);
	rtnl_link_set_num_tx_queues(peer, 1);
	rtnl_link_set_num_rx_queues(peer, 1);
	if (mtu)
		rtnl_link_set_mtu(peer, (unsigned)mtu);
	rtnl_link_put(peer);
	err = rtnl_link_add(hs, veth, NLM_F_CREATE | NLM_F_EXCL);
	if (err < 0) {
		cni_error(ROTA_ERR_NETLINK, "create veth %s (pod side %s): %s", host_name, ifname, nl_geterror(err));
		goto out;
	}
	/* From here on, a failure deletes the pair (the caller's rollback). */
	err = get_link(hs, host_name, &out->host_ifindex, out->host_mac);
	if (err >= 0)
		err = get_link(ps, ifname, &out->pod_ifindex, out->pod_mac);
	if (err < 0) {
		cni_error(ROTA_ERR_NETLINK, "read back veth %s/%s: %s", host_name, ifname, nl_geterror(err));
		goto out;
	}
	/* Host side: no address, no IPv6 (set before it is up, so it never
	 * autoconfigures; there is no netlink attribute for it). Then both ends
	 * up (a veth end cannot come up while it is created: its peer is not
	 * linked yet), the host end in one request with proxy_arp (it answers
	 * ARP for anything it routes, so the pod's gateway resolves even without
	 * the static entry) and the alias that names the attachment for GC. */
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", host_name);
	sysctl_write(path, "1");
	{
		struct rtnl_link *chg = rtnl_link_alloc(), *orig = rtnl_link_alloc();

		if (!chg || !orig) {
			rtnl_link_put(chg);
			rtnl_link_put(orig);
			goto nomem;
		}
		rtnl_link_set_ifindex(orig, out->host_ifindex);
		rtnl_link_set_flags(chg, IFF_UP);
		rtnl_link_inet_set_conf(chg, IPV4_DEVCONF_PROXY_ARP, 1);
		if (alias && *alias)
			rtnl_link_set_ifalias(chg, alias);
		err = rtnl_link_change(hs, orig, chg, 0);
		if (err >= 0) {
			rtnl_link_put(chg);
			chg = rtnl_link_alloc();
			if (!chg) {
				rtnl_link_put(orig);
				goto nomem;
			}
			rtnl_link_set_flags(chg, IFF_UP);
			rtnl_link_set_ifindex(orig, out->pod_ifindex);
			err = rtnl_link_change(ps, orig, chg, 0);
		}
		rtnl_link_put(chg);
		rtnl_link_put(orig);
		if (err < 0) {
			cni_error(ROTA_ERR_NETLINK, "set %s/%s up: %s", host_name, ifname, nl_geterror(err));
			goto out;
		}
	}
	/* Pod side: ip/32, gateway's MAC pinned, default via it (onlink). */
	a = rtnl_addr_alloc();
	la = addr4(ip, 32);
	if (!a || !la)
		goto nomem;
	rtnl_addr_set_ifindex(a, out->pod_ifindex);
	rtnl_addr_set_local(a, la);
	err = rtnl_addr_add(ps, a, 0);
	if (err < 0) {
		cni_error(ROTA_ERR_NETLINK, "address on %s: %s", ifname, nl_geterror(err));
		goto out;
	}
	err = neigh_add(ps, out->pod_ifindex, gw, out->host_mac);
	if (err < 0) {
		cni_error(ROTA_ERR_NETLINK, "gateway neighbour in pod: %s", nl_geterror(err));
		goto out;
	}
	err = route_add(ps, out->pod_ifindex, 0, 0, gw);
	if (err < 0) {
		cni_error(ROTA_ERR_NETLINK, "default route via %s in pod: %s", ROTA_CNI_GATEWAY, nl_geterror(err));
		goto out;
	}
	/* Host: the pod's /32 on its veth, its MAC pinned. */
	err = neigh_add(hs, out->host_ifindex, ip, out->pod_mac);
	if (err >= 0)
		err = route_add(hs, out->host_ifindex, ip, 32, 0);
	if (err < 0) {
		cni_error(ROTA_ERR_NETLINK, "host route/neighbour to the pod on %s: %s", host_name, nl_geterror(err));
		goto out;
	}
	ret = 0;
	goto out;
nomem:
	cni_error(ROTA_ERR_NETLINK, "out of memory");
out:
	if (a)
		rtnl_addr_put(a);
	nl_addr_put(la);
	if (veth)
		rtnl_link_put(veth);
	return ret;
}

int net_host_link(const char *host_name, int *ifindex)
{
	unsigned idx = if_nametoindex(host_name);

	if (!idx)
		return -errno;
	*ifindex = (int)idx;
	return 0;
}

int net_del_host(const char *host_name)
{
	struct nl_sock *sk = host_sock();
	struct rtnl_link *l;
	int err;

	if (!sk)
		return -EIO;
	l = rtnl_link_alloc();
	if (!l)
		return -ENOMEM;
	rtnl_link_set_name(l, host_name);
	err = rtnl_link_delete(sk, l);
	rtnl_link_put(l);
	if (err == -NLE_NODEV || err == -NLE_OBJ_NOTFOUND)
		return 0;
	return err < 0 ? -EIO : 0;
}

/* rota's host-side names: the prefix and exactly 11 lowercase hex digits. */
static bool is_host_name(const char *name)
{
	size_t n = strlen(ROTA_CNI_HOST_PREFIX);

	if (strncmp(name, ROTA_CNI_HOST_PREFIX, n) || strlen(name) != n + 11)
		return false;
	for (const char *p = name + n; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

struct veth_walk {
	host_veth_cb cb;
	void *arg;
	int ret;
};

static void veth_visit(struct nl_object *o, void *arg)
{
	struct veth_walk *w = arg;
	struct rtnl_link *l = (struct rtnl_link *)o;
	struct host_veth v = { 0 };
	const char *name = rtnl_link_get_name(l);

	if (w->ret || !name || !is_host_name(name) || !rtnl_link_is_veth(l))
		return;
	snprintf(v.name, sizeof(v.name), "%s", name);
	v.ifindex = rtnl_link_get_ifindex(l);
	v.alias = rtnl_link_get_ifalias(l);
	w->ret = w->cb(&v, w->arg);
}

int net_foreach_host_veth(host_veth_cb cb, void *arg)
{
	struct nl_sock *sk = host_sock();
	struct veth_walk w = { cb, arg, 0 };
	struct nl_cache *cache = NULL;
	int err;

	if (!sk)
		return -EIO;
	/* A snapshot: the callback may delete links while we walk it. */
	err = rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache);
	if (err < 0)
		return -EIO;
	nl_cache_foreach(cache, veth_visit, &w);
	nl_cache_free(cache);
	return w.ret;
}

struct find_ctx {
	int ifindex;
	in_addr_t ip;		/* address/route destination to find */
	int prefix;
	in_addr_t gw;
	bool found;
};

static void find_addr(struct nl_object *o, void *arg)
{
	struct find_ctx *f = arg;
	struct rtnl_addr *a = (struct rtnl_addr *)o;
	struct nl_addr *l = rtnl_addr_get_local(a);

	if (rtnl_addr_get_ifindex(a) == f->ifindex && l && nl_addr_get_family(l) == AF_INET &&
	    nl_addr_get_prefixlen(l) == 32 && !memcmp(nl_addr_get_binary_addr(l), &f->ip, 4))
		f->found = true;
}

static void find_route(struct nl_object *o, void *arg)
{
	struct find_ctx *f = arg;
	struct rtnl_route *r = (struct rtnl_route *)o;
	struct nl_addr *d = rtnl_route_get_dst(r);
	struct rtnl_nexthop *nh;
	struct nl_addr *g;
	in_addr_t dst = 0;

	if (rtnl_route_get_table(r) != RT_TABLE_MAIN || rtnl_route_get_nnexthops(r) != 1)
		return;
	if (d && nl_addr_get_len(d) == 4)
		memcpy(&dst, nl_addr_get_binary_addr(d), 4);
	if ((d ? (int)nl_addr_get_prefixlen(d) : 0) != f->prefix || dst != f->ip)
		return;
	nh = rtnl_route_nexthop_n(r, 0);
	if (rtnl_route_nh_get_ifindex(nh) != f->ifindex)
		return;
	g = rtnl_route_nh_get_gateway(nh);
	if (f->gw ? g && nl_addr_get_len(g) == 4 && !memcmp(nl_addr_get_binary_addr(g), &f->gw, 4) : !g)
		f->found = true;
}

int net_check(int nsfd, const char *ifname, const char *host_name, in_addr_t ip)
{
	struct nl_sock *hs = host_sock(), *ps = pod_sock(nsfd);
	struct nl_cache *cache = NULL;
	struct find_ctx f = { 0 };
	struct rtnl_link *l = NULL;
	unsigned char mac[6];
	int hidx, pidx, ret = -1;
	char b[16];

	if (!hs || !ps) {
		cni_error(ROTA_ERR_NETLINK, "netlink socket: %s", strerror(errno));
		goto out;
	}
	if (rtnl_link_get_kernel(ps, 0, ifname, &l) < 0) {
		cni_error(ROTA_ERR_CHECK, "interface %s is missing in the pod's netns", ifname);
		goto out;
	}
	pidx = rtnl_link_get_ifindex(l);
	if (!(rtnl_link_get_flags(l) & IFF_UP)) {
		cni_error(ROTA_ERR_CHECK, "interface %s in the pod is down", ifname);
		goto out;
	}
	if (get_link(hs, host_name, &hidx, mac) < 0) {
		cni_error(ROTA_ERR_CHECK, "host-side veth %s is missing", host_name);
		goto out;
	}
	if (rtnl_addr_alloc_cache(ps, &cache) < 0) {
		cni_error(ROTA_ERR_NETLINK, "list pod addresses");
		goto out;
	}
	f = (struct find_ctx){ .ifindex = pidx, .ip = ip };
	nl_cache_foreach(cache, find_addr, &f);
	nl_cache_free(cache);
	cache = NULL;
	if (!f.found) {
		cni_error(ROTA_ERR_CHECK, "address %s/32 is missing on %s in the pod", ip_str(ip, b), ifname);
		goto out;
	}
	if (rtnl_route_alloc_cache(ps, AF_INET, 0, &cache) < 0) {
		cni_error(ROTA_ERR_NETLINK, "list pod routes");
		goto out;
	}
	f = (struct find_ctx){ .ifindex = pidx, .gw = inet_addr(ROTA_CNI_GATEWAY) };
	nl_cache_foreach(cache, find_route, &f);
	nl_cache_free(cache);
	cache = NULL;
	if (!f.found) {
		cni_error(ROTA_ERR_CHECK, "default route via %s dev %s is missing in the pod", ROTA_CNI_GATEWAY, ifname);
		goto out;
	}
	if (rtnl_route_alloc_cache(hs, AF_INET, 0, &cache) < 0) {
		cni_error(ROTA_ERR_NETLINK, "list host routes");
		goto out;
	}
	f = (struct find_ctx){ .ifindex = hidx, .ip = ip, .prefix = 32 };
	nl_cache_foreach(cache, find_route, &f);
	nl_cache_free(cache);
	cache = NULL;
	if (!f.found) {
		cni_error(ROTA_ERR_CHECK, "host route %s/32 dev %s is missing", ip_str(ip, b), host_name);
		goto out;
	}
	ret = 0;
out:
	if (l)
		rtnl_link_put(l);
	return ret;
}
