/*
 * tc.c - root qdiscs over rtnetlink (see tc.h). Every socket is opened on
 * a thread inside the namespace it acts on (cep_netns_run), or inside a
 * throwaway namespace for the probe.
 */
#define _GNU_SOURCE
#include "tc.h"

#include <errno.h>
#include <jansson.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"

#define NL_BUF 8192

static struct mnl_socket *rt_open(cep_err *err)
{
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (nl == NULL) {
		cep_err_errno(err, errno, "rtnetlink socket");
		return NULL;
	}
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		cep_err_errno(err, errno, "binding the rtnetlink socket");
		mnl_socket_close(nl);
		return NULL;
	}
	return nl;
}

/* Sends nlh and runs cb over the answers until done; returns 0 or the
 * kernel's errno (negative values never: errno codes are positive). */
static int rt_talk(struct mnl_socket *nl, struct nlmsghdr *nlh, mnl_cb_t cb,
    void *data)
{
	nlh->nlmsg_seq = (uint32_t)cep_clock_mono_ms();
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return errno;
	char buf[NL_BUF];
	unsigned portid = mnl_socket_get_portid(nl);
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0)
			return errno;
		int r = mnl_cb_run(buf, (size_t)n, nlh->nlmsg_seq, portid, cb,
		    data);
		if (r < 0)
			return errno;
		if (r == MNL_CB_STOP)
			return 0;
	}
}

static struct nlmsghdr *qdisc_msg(char *buf, uint16_t type, uint16_t flags,
    int ifindex, uint32_t handle)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	struct tcmsg *t = mnl_nlmsg_put_extra_header(nlh, sizeof(*t));
	t->tcm_family = AF_UNSPEC;
	t->tcm_ifindex = ifindex;
	t->tcm_handle = handle;
	t->tcm_parent = TC_H_ROOT;
	return nlh;
}

/* netem's TCA_OPTIONS is a struct followed by attributes (not a plain
 * nest): written by hand, without NLA_F_NESTED, as tc(8) does. */
static int netem_add_sock(struct mnl_socket *nl, int ifindex, uint32_t handle,
    int64_t delay_ns, int64_t jitter_ns)
{
	char buf[NL_BUF];
	struct nlmsghdr *nlh = qdisc_msg(buf, RTM_NEWQDISC,
	    NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, ifindex, handle);
	mnl_attr_put_strz(nlh, TCA_KIND, "netem");
	struct nlattr *opt = mnl_nlmsg_get_payload_tail(nlh);
	mnl_attr_put(nlh, TCA_OPTIONS, 0, NULL);
	struct tc_netem_qopt *q = mnl_nlmsg_put_extra_header(nlh, sizeof(*q));
	q->limit = 10000;
	q->latency = (uint32_t)(delay_ns / 64); /* psched ticks */
	q->jitter = (uint32_t)(jitter_ns / 64);
	mnl_attr_put_u64(nlh, TCA_NETEM_LATENCY64, (uint64_t)delay_ns);
	mnl_attr_put_u64(nlh, TCA_NETEM_JITTER64, (uint64_t)jitter_ns);
	opt->nla_len = (uint16_t)((char *)mnl_nlmsg_get_payload_tail(nlh) -
	    (char *)opt);
	return rt_talk(nl, nlh, NULL, NULL);
}

/* tbf: TCA_OPTIONS is a real nest. The rate says it is on an Ethernet
 * link layer, so the kernel computes its own rate table (no TCA_TBF_RTAB,
 * which tc(8) builds from /proc/net/psched); the burst is given in bytes
 * (TCA_TBF_BURST) and the buffer in psched ticks (64 ns) as a fallback for
 * kernels that read only the struct. limit: bytes queued before drops. */
static int tbf_add_sock(struct mnl_socket *nl, int ifindex, uint32_t handle,
    uint64_t rate_Bps, uint32_t burst, uint32_t limit)
{
	char buf[NL_BUF];
	struct nlmsghdr *nlh = qdisc_msg(buf, RTM_NEWQDISC,
	    NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, ifindex, handle);
	mnl_attr_put_strz(nlh, TCA_KIND, "tbf");
	struct nlattr *opt = mnl_attr_nest_start(nlh, TCA_OPTIONS);
	struct tc_tbf_qopt q;
	memset(&q, 0, sizeof(q));
	q.rate.rate = rate_Bps > UINT32_MAX ? UINT32_MAX : (uint32_t)rate_Bps;
	q.rate.linklayer = TC_LINKLAYER_ETHERNET;
	q.limit = limit;
	uint64_t buffer_ns = (uint64_t)burst * 1000000000ULL / rate_Bps;
	q.buffer = buffer_ns / 64 > UINT32_MAX ? UINT32_MAX :
	                                         (uint32_t)(buffer_ns / 64);
	mnl_attr_put(nlh, TCA_TBF_PARMS, sizeof(q), &q);
	if (rate_Bps > UINT32_MAX)
		mnl_attr_put_u64(nlh, TCA_TBF_RATE64, rate_Bps);
	mnl_attr_put_u32(nlh, TCA_TBF_BURST, burst);
	mnl_attr_nest_end(nlh, opt);
	return rt_talk(nl, nlh, NULL, NULL);
}

/* ---- probe ---- */

typedef struct probe_job {
	const char *kind;
	bool ok;
	int e;
	cep_err err;
} probe_job;

static void *probe_thread(void *p)
{
	probe_job *j = p;
	if (unshare(CLONE_NEWNET) != 0) {
		j->e = errno;
		return NULL;
	}
	struct mnl_socket *nl = rt_open(&j->err);
	if (nl == NULL) {
		j->e = EIO;
		return NULL;
	}
	int r = EINVAL;
	if (strcmp(j->kind, "netem") == 0)
		r = netem_add_sock(nl, 1, 0xce000000u, 1000000, 0);
	else if (strcmp(j->kind, "tbf") == 0)
		r = tbf_add_sock(nl, 1, 0xce000000u, 125000, 16384, 65536);
	j->ok = r == 0;
	if (r != 0 && r != ENOENT && r != EOPNOTSUPP)
		j->e = r;
	mnl_socket_close(nl);
	return NULL; /* the thread's namespace dies with it */
}

int cep_tc_kind_available(const char *kind, bool *ok, cep_err *err)
{
	probe_job j = {.kind = kind};
	pthread_t t;
	int e = pthread_create(&t, NULL, probe_thread, &j);
	if (e != 0)
		return cep_err_errno(err, e, "thread for a qdisc probe");
	pthread_join(t, NULL);
	*ok = j.ok;
	if (j.e != 0)
		return cep_err_errno(err, j.e, "probing for qdisc support");
	return CEP_OK;
}

/* ---- links ---- */

typedef struct links_job {
	int *ifindex;
	size_t max, n;
} links_job;

static int link_cb(const struct nlmsghdr *nlh, void *data)
{
	links_job *j = data;
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	if (!(ifi->ifi_flags & IFF_LOOPBACK) && j->n < j->max)
		j->ifindex[j->n++] = ifi->ifi_index;
	return MNL_CB_OK;
}

static int links_in(void *arg, cep_err *err)
{
	links_job *j = arg;
	struct mnl_socket *nl = rt_open(err);
	if (nl == NULL)
		return err ? err->code : CEP_INTERNAL;
	char buf[NL_BUF];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	struct rtgenmsg *g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->rtgen_family = AF_PACKET;
	int r = rt_talk(nl, nlh, link_cb, j);
	mnl_socket_close(nl);
	return r == 0 ? CEP_OK : cep_err_errno(err, r, "listing interfaces");
}

int cep_tc_links(int nsfd, int *ifindex, size_t max, size_t *n, cep_err *err)
{
	links_job j = {.ifindex = ifindex, .max = max};
	int rc = cep_netns_run(nsfd, links_in, &j, err);
	*n = j.n;
	return rc;
}

/* ---- add / delete ---- */

typedef struct q_job {
	int ifindex;
	uint32_t handle;
	bool tbf;
	int64_t delay, jitter; /* netem */
	uint64_t rate;         /* tbf */
	uint32_t burst, limit;
	uint32_t root; /* root qdisc handle found */
	bool has_root;
} q_job;

static int add_in(void *arg, cep_err *err)
{
	q_job *j = arg;
	struct mnl_socket *nl = rt_open(err);
	if (nl == NULL)
		return err ? err->code : CEP_INTERNAL;
	int r = j->tbf ?
	    tbf_add_sock(nl, j->ifindex, j->handle, j->rate, j->burst,
	        j->limit) :
	    netem_add_sock(nl, j->ifindex, j->handle, j->delay, j->jitter);
	mnl_socket_close(nl);
	if (r != 0)
		return cep_err_errno(err, r,
		    j->tbf ? "adding a tbf qdisc" : "adding a netem qdisc");
	return CEP_OK;
}

int cep_tc_netem_add(int nsfd, int ifindex, uint16_t major, int64_t delay_ns,
    int64_t jitter_ns, cep_err *err)
{
	q_job j = {.ifindex = ifindex,
	    .handle = (uint32_t)major << 16,
	    .delay = delay_ns,
	    .jitter = jitter_ns};
	return cep_netns_run(nsfd, add_in, &j, err);
}

int cep_tc_tbf_add(int nsfd, int ifindex, uint16_t major, uint64_t rate_Bps,
    uint32_t burst, uint32_t limit, cep_err *err)
{
	if (rate_Bps == 0 || burst == 0)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "tbf: rate and burst must be > 0");
	q_job j = {.ifindex = ifindex,
	    .handle = (uint32_t)major << 16,
	    .tbf = true,
	    .rate = rate_Bps,
	    .burst = burst,
	    .limit = limit};
	return cep_netns_run(nsfd, add_in, &j, err);
}

static int root_cb(const struct nlmsghdr *nlh, void *data)
{
	q_job *j = data;
	const struct tcmsg *t = mnl_nlmsg_get_payload(nlh);
	if (t->tcm_ifindex == j->ifindex && t->tcm_parent == TC_H_ROOT) {
		j->root = t->tcm_handle;
		j->has_root = true;
	}
	return MNL_CB_OK;
}

static int find_root(struct mnl_socket *nl, q_job *j)
{
	char buf[NL_BUF];
	struct nlmsghdr *nlh = qdisc_msg(buf, RTM_GETQDISC, NLM_F_DUMP, 0, 0);
	j->has_root = false;
	return rt_talk(nl, nlh, root_cb, j);
}

static int del_in(void *arg, cep_err *err)
{
	q_job *j = arg;
	struct mnl_socket *nl = rt_open(err);
	if (nl == NULL)
		return err ? err->code : CEP_INTERNAL;
	int r = find_root(nl, j);
	if (r == 0 && j->has_root && j->root == j->handle) {
		char buf[NL_BUF];
		struct nlmsghdr *nlh = qdisc_msg(buf, RTM_DELQDISC, NLM_F_ACK,
		    j->ifindex, j->handle);
		r = rt_talk(nl, nlh, NULL, NULL);
		if (r == ENODEV || r == ENOENT || r == EINVAL)
			r = 0;
		if (r == 0)
			r = find_root(nl, j);
	}
	mnl_socket_close(nl);
	if (r != 0)
		return cep_err_errno(err, r, "removing a root qdisc");
	if (j->has_root && j->root == j->handle)
		return cep_err_set(err, CEP_INTERNAL,
		    "qdisc %x: still on "
		    "interface %d after delete",
		    j->handle >> 16, j->ifindex);
	return CEP_OK;
}

int cep_tc_root_del(int nsfd, int ifindex, uint16_t major, cep_err *err)
{
	q_job j = {.ifindex = ifindex, .handle = (uint32_t)major << 16};
	return cep_netns_run(nsfd, del_in, &j, err);
}

int cep_tc_undo(const char *run_id, const char *undo_json, cep_err *err)
{
	(void)run_id;
	json_error_t je;
	json_t *u = json_loads(undo_json ? undo_json : "", 0, &je);
	json_int_t dev = 0, ino = 0, major = 0;
	const char *path = "";
	json_t *ifs = NULL;
	if (u == NULL ||
	    json_unpack(u, "{s:I, s:I, s?s, s:o, s:I}", "netns_dev", &dev,
	        "netns_inode", &ino, "netns_path", &path, "ifindexes", &ifs,
	        "major", &major) != 0 ||
	    !json_is_array(ifs) || major <= 0 || major > 0xffff) {
		json_decref(u);
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "tc-qdisc undo: "
		    "record lacks netns_dev/netns_inode/ifindexes/major");
	}
	cep_netns_id id = {.dev = (uint64_t)dev, .ino = (uint64_t)ino};
	int fd = -1, rc = cep_netns_find(&id, path, &fd, err);
	if (rc == CEP_NOT_FOUND) {
		json_decref(u);
		return CEP_OK; /* namespace gone: its qdiscs too */
	}
	size_t i;
	json_t *v;
	json_array_foreach(ifs, i, v)
	{
		if (rc != CEP_OK)
			break;
		if (json_is_integer(v))
			rc = cep_tc_root_del(fd, (int)json_integer_value(v),
			    (uint16_t)major, err);
	}
	if (fd >= 0)
		close(fd);
	json_decref(u);
	return rc;
}
