/*
 * netinj.h - the fixture the network fault tests share (header-only,
 * root): the event sink and the lab (netlab.h) of one test, a fault
 * injected through its backend as the engine does (describe, inject,
 * revert), the check that nothing of it is left, and a UDP socket opened
 * inside a lab namespace. Each test file declares its own TestSuite with
 * setup and teardown.
 */
#ifndef CEP_TEST_NETINJ_H
#define CEP_TEST_NETINJ_H

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "fault.h"
#include "netlab.h"
#include "netns.h"
#include "rt.h"
#include "undo_node.h"

static rt_sink S;
static netlab L;
static inline void setup(void)
{
	rt_sink_open(&S);
	runner_fault_set_run("r-0123456789abcdef", 0);
	cep_undo_node_register(); /* as cep-runner's main does */
}
static inline void teardown(void)
{
	nl_down(&L);
	rt_sink_close(&S);
}

#define EXP_HEAD                                                          \
	"apiVersion: cep.io/v1\nkind: Experiment\nmetadata:\n  name: t\n" \
	"spec:\n  duration: 60s\n  faults:\n"

typedef struct injected {
	cep_exp *e;
	const cep_fault_ops *ops;
	void *st;
	char undo[1024];
} injected;

static inline void inject_yaml(injected *in, const char *fault)
{
	char yaml[2048];
	snprintf(yaml, sizeof(yaml), EXP_HEAD "    - %s\n", fault);
	in->e = rt_parse(yaml);
	const cep_exp_item *it = cep_exp_fault(in->e, 0);
	in->ops = runner_fault_find(cep_exp_item_type(it));
	cr_assert_not_null(in->ops, "no backend for %s", cep_exp_item_type(it));
	char target[300];
	json_t *u = NULL;
	cep_err err = {0};
	cr_assert_eq(in->ops->describe(it, target, sizeof(target), &u, &err),
	    CEP_OK, "describe: %s", err.msg);
	char *s = json_dumps(u, JSON_COMPACT);
	snprintf(in->undo, sizeof(in->undo), "%s", s);
	free(s);
	json_decref(u);
	cep_fault_ctx ctx = {.sink = S.sink, .fault_id = "f"};
	cr_assert_eq(in->ops->inject(it, &ctx, &in->st, &err), CEP_OK,
	    "inject: %s", err.msg);
}

static inline void revert(injected *in)
{
	cep_err err = {0};
	cr_assert_eq(in->ops->revert(in->st, &err), CEP_OK, "revert: %s",
	    err.msg);
	cep_exp_free(in->e);
}

static inline void assert_clean(const char *ns)
{
	int pids[4];
	cr_assert_not(nl_has_cep_table(ns), "a cep_ table is left in %s", ns);
	cr_assert_eq(rt_children_named("cep-netq", pids, 4), 0,
	    "a queue worker is left");
	cr_assert_eq(rt_children_named("cep-dns", pids, 4), 0,
	    "a DNS worker is left");
}

typedef struct udp_open {
	const char *bind_ip;
	int port, fd;
} udp_open;

static inline int open_udp(void *arg, cep_err *err)
{
	udp_open *u = arg;
	u->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET,
	    .sin_port = htons((uint16_t)u->port)};
	inet_pton(AF_INET, u->bind_ip, &sa.sin_addr);
	int one = 1;
	if (u->fd >= 0)
		setsockopt(u->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (u->fd < 0 || bind(u->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		return cep_err_set(err, CEP_INTERNAL, "udp bind %s",
		    u->bind_ip);
	return CEP_OK;
}

static inline int udp_sock(const char *ns, const char *ip, int port)
{
	int nsfd;
	cep_netns_id id;
	cep_err err = {0};
	cr_assert_eq(cep_netns_open(0, ns, &nsfd, &id, NULL, 0, &err), CEP_OK,
	    "%s", err.msg);
	udp_open u = {.bind_ip = ip, .port = port, .fd = -1};
	cr_assert_eq(cep_netns_run(nsfd, open_udp, &u, &err), CEP_OK, "%s",
	    err.msg);
	close(nsfd);
	return u.fd;
}

#endif
