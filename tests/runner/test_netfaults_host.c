/*
 * test_netfaults_host.c - the runner's second check of a host-netns
 * target (policy.network.allowHostNetns, carried by the assignment) and
 * the lifeline exemption of the relay's TCP port.
 *
 * Nothing here injects into this machine's own network namespace: the
 * decision is tested by identity and through describe (which resolves
 * and records, never injects); the exemption rules are applied for real
 * only inside a lab namespace (netlab.h), with the fault's identity set
 * to the host's so the lifeline applies while the rules land in the lab.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "fault.h"
#include "fault_net.h"
#include "netlab.h"
#include "netns.h"
#include "nft.h"
#include "rt.h"

#define RELAY_URL "tls+tcp://10.201.61.2:17443"
#define LIFELINE 17443
#define OTHER 17444

static netlab L;
static bool lab;
static void setup(void)
{
	runner_fault_set_run("r-0123456789abcdef", 0);
	runner_net_configure(false, NULL);
}
static void teardown(void)
{
	if (lab)
		nl_down(&L);
	runner_net_configure(false, NULL);
}
TestSuite(nethost, .init = setup, .fini = teardown, .timeout = 60);

#define EXP_HEAD                                                          \
	"apiVersion: cep.io/v1\nkind: Experiment\nmetadata:\n  name: t\n" \
	"spec:\n  duration: 60s\n  faults:\n"

static cep_exp *one_fault(const char *fault)
{
	char yaml[1024];
	snprintf(yaml, sizeof(yaml), EXP_HEAD "    - %s\n", fault);
	return rt_parse(yaml);
}

static cep_netns_id self_id(void)
{
	struct stat st;
	cr_assert_eq(stat("/proc/self/ns/net", &st), 0);
	return (cep_netns_id){(uint64_t)st.st_dev, (uint64_t)st.st_ino};
}

Test(nethost, decision_by_identity)
{
	cep_netns_id host = self_id();
	cep_netns_id other = {host.dev, host.ino + 7};
	cep_err err = {0};
	cr_assert_eq(runner_net_target_allowed("network-loss", &host, "/x",
	                 &err),
	    CEP_PERMISSION_DENIED);
	cr_expect(strstr(err.msg, "policy.network.allowHostNetns is false"),
	    "%s", err.msg);
	cr_assert_eq(runner_net_target_allowed("network-loss", &other, "/x",
	                 &err),
	    CEP_OK, "%s", err.msg);
	runner_net_configure(true, RELAY_URL);
	cr_assert_eq(runner_net_target_allowed("network-loss", &host, "/x",
	                 &err),
	    CEP_OK, "%s", err.msg);
	runner_net_configure(false, RELAY_URL);
	cr_assert_eq(runner_net_target_allowed("network-loss", &host, "/x",
	                 &err),
	    CEP_PERMISSION_DENIED);
}

/* describe resolves the target and records it: refused on the host's
 * namespace by default, accepted with the switch. Never injected. */
Test(nethost, describe_accepts_host_netns_only_when_allowed)
{
	cep_exp *e = one_fault("{name: cut, type: network-partition, netns: "
	                       "/proc/self/ns/net, cidrs: [\"192.0.2.0/24\"]}");
	const cep_exp_item *it = cep_exp_fault(e, 0);
	const cep_fault_ops *ops = runner_fault_find("network-partition");
	cr_assert_not_null(ops);
	char target[300];
	json_t *u = NULL;
	cep_err err = {0};
	cr_assert_eq(ops->describe(it, target, sizeof(target), &u, &err),
	    CEP_PERMISSION_DENIED);
	cr_expect(strstr(err.msg, "policy.network.allowHostNetns"), "%s",
	    err.msg);
	cr_assert_null(u);
	runner_net_configure(true, RELAY_URL);
	cr_assert_eq(ops->describe(it, target, sizeof(target), &u, &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_not_null(u);
	cr_expect(strstr(target, "network namespace /proc/self/ns/net"), "%s",
	    target);
	json_decref(u);
	/* a root qdisc cannot exempt the lifeline: the host takes nftables */
	cr_expect_not(runner_net_qdisc_fits(it, "tbf", "CEP_TEST_UNSET_ENV"));
	cep_exp_free(e);
}

Test(nethost, relay_port_from_url)
{
	static const struct {
		const char *url;
		unsigned port;
	} cases[] = {
	    {"tls+tcp://127.0.0.1:7443", 7443},
	    {"tls+tcp://relay.example:17443", 17443},
	    {"tls+tcp://[fd00::1]:9000", 9000},
	    {"tls+tcp://[fd00::1]", 0},
	    {"ipc:///run/cep/relay.sock", 0},
	    {"tls+tcp://h:0", 0},
	    {"tls+tcp://h:70000", 0},
	    {"tls+tcp://h:12x", 0},
	    {NULL, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		runner_net_configure(true, cases[i].url);
		cr_expect_eq(runner_net_relay_port(), cases[i].port, "%s -> %u",
		    cases[i].url ? cases[i].url : "(null)",
		    runner_net_relay_port());
	}
}

/* The spec of a both-ways drop of everything, in f's namespace. */
static void drop_all_spec(const cep_exp_item *it, cep_net_fault *f,
    cep_nft_spec *s)
{
	cep_err err = {0};
	cr_assert_eq(runner_net_spec(it, f, s, &err), CEP_OK, "%s", err.msg);
	s->action = CEP_NFT_DROP;
	s->percent = 100;
}

/* Its table text. */
static void drop_all_cmds(const cep_exp_item *it, cep_net_fault *f, char *buf,
    size_t len)
{
	cep_nft_spec s;
	cep_err err = {0};
	drop_all_spec(it, f, &s);
	cr_assert_eq(cep_nft_spec_script(&s, buf, len, &err), CEP_OK, "%s",
	    err.msg);
}

Test(nethost, lifeline_rules_only_in_the_host_netns)
{
	runner_net_configure(true, RELAY_URL);
	cep_exp *e = one_fault("{name: cut, type: network-loss, netns: x, "
	                       "percent: 100, direction: both}");
	cep_net_fault f = {.nsfd = -1, .id = self_id()};
	cep_err err = {0};
	cr_assert_eq(cep_nft_table_name(runner_fault_run_id(), 900, f.table,
	                 sizeof(f.table), &err),
	    CEP_OK);
	char *buf = malloc(CEP_NFT_SCRIPT_MAX);
	cr_assert_not_null(buf);
	drop_all_cmds(cep_exp_fault(e, 0), &f, buf, CEP_NFT_SCRIPT_MAX);
	char want[128];
	static const char *const chains[] = {"out", "in"};
	for (int i = 0; i < 2; i++) {
		snprintf(want, sizeof(want), "%s %s tcp dport %d accept",
		    f.table, chains[i], LIFELINE);
		cr_expect(strstr(buf, want), "no \"%s\" in:\n%s", want, buf);
		snprintf(want, sizeof(want), "%s %s tcp sport %d accept",
		    f.table, chains[i], LIFELINE);
		cr_expect(strstr(buf, want), "no \"%s\" in:\n%s", want, buf);
	}
	/* the exemption comes before the drop */
	cr_expect_lt(strstr(buf, "tcp dport"), strstr(buf, "drop"));
	/* another namespace: no exemption */
	f.id.ino += 7;
	drop_all_cmds(cep_exp_fault(e, 0), &f, buf, CEP_NFT_SCRIPT_MAX);
	cr_expect_null(strstr(buf, "17443"), "%s", buf);
	/* no relay port known (ipc): no exemption either */
	f.id = self_id();
	runner_net_configure(true, "ipc:///run/cep/relay.sock");
	drop_all_cmds(cep_exp_fault(e, 0), &f, buf, CEP_NFT_SCRIPT_MAX);
	cr_expect_null(strstr(buf, "sport"), "%s", buf);
	free(buf);
	cep_exp_free(e);
}

/* Whether a TCP connection from lab a to b's ip:port completes within
 * 700 ms (a dropped SYN leaves it pending). */
static bool tcp_connects(int port)
{
	int c = nl_tcp_sock(L.a, NULL, 0, false);
	struct sockaddr_in sa = {.sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, L.ip_b, &sa.sin_addr);
	int rc = connect(c, (struct sockaddr *)&sa, sizeof(sa));
	bool ok = rc == 0;
	if (rc != 0 && errno == EINPROGRESS) {
		struct pollfd p = {.fd = c, .events = POLLOUT};
		int soerr = -1;
		socklen_t sl = sizeof(soerr);
		ok = poll(&p, 1, 700) == 1 &&
		    getsockopt(c, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 &&
		    soerr == 0;
	}
	close(c);
	return ok;
}

/* Applies the both-ways drop in lab a with f.id = id (the lifeline
 * decision follows f.id; the rules land in lab a's namespace). */
static void drop_in_lab(const cep_exp_item *it, cep_net_fault *f,
    cep_netns_id id, unsigned n)
{
	cep_err err = {0};
	f->id = id;
	cr_assert_eq(cep_nft_table_name(runner_fault_run_id(), n, f->table,
	                 sizeof(f->table), &err),
	    CEP_OK);
	cep_nft_spec s;
	drop_all_spec(it, f, &s);
	cr_assert_eq(cep_nft_create(f->nsfd, &s, &err), CEP_OK, "%s", err.msg);
}

Test(nethost, lifeline_port_survives_a_full_partition_in_a_lab)
{
	nl_up(&L, 61);
	lab = true;
	runner_net_configure(true, RELAY_URL);
	int l1 = nl_tcp_sock(L.b, L.ip_b, LIFELINE, true);
	int l2 = nl_tcp_sock(L.b, L.ip_b, OTHER, true);
	cr_assert(tcp_connects(LIFELINE) && tcp_connects(OTHER),
	    "the lab does not connect before any fault");
	cep_exp *e = one_fault("{name: cut, type: network-loss, netns: x, "
	                       "percent: 100, direction: both}");
	const cep_exp_item *it = cep_exp_fault(e, 0);
	cep_net_fault f = {.nsfd = -1};
	cep_err err = {0};
	cep_netns_id lab_id;
	cr_assert_eq(cep_netns_open(0, L.a, &f.nsfd, &lab_id, NULL, 0, &err),
	    CEP_OK, "%s", err.msg);
	/* control: a namespace that is not the host's gets no exemption */
	drop_in_lab(it, &f, lab_id, 901);
	cr_expect_not(tcp_connects(LIFELINE),
	    "relay port passed a partition "
	    "outside the host's namespace");
	cr_assert_eq(cep_nft_delete_table(f.nsfd, f.table, &err), CEP_OK, "%s",
	    err.msg);
	/* as in the host's namespace: the relay port passes, nothing else */
	drop_in_lab(it, &f, self_id(), 902);
	cr_expect(tcp_connects(LIFELINE), "the runner's lifeline was cut");
	cr_expect_not(tcp_connects(OTHER), "the partition let port %d through",
	    OTHER);
	double loss, avg;
	nl_ping(L.a, L.ip_b, 5, "0.05", &loss, &avg);
	cr_expect_eq(loss, 100, "ping passed the partition: %.0f%%", loss);
	cr_assert_eq(cep_nft_delete_table(f.nsfd, f.table, &err), CEP_OK, "%s",
	    err.msg);
	cr_expect_not(nl_has_cep_table(L.a), "a cep_ table is left in %s", L.a);
	cr_expect(tcp_connects(OTHER), "port %d still cut after the revert",
	    OTHER);
	close(f.nsfd);
	close(l1);
	close(l2);
	cep_exp_free(e);
}
