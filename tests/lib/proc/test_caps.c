/* test_caps.c - the per-fault capability table (lib/proc/caps.h). */
#include <criterion/criterion.h>
#include <linux/capability.h>
#include <string.h>

#include "caps.h"

#define NET (CEP_CAP_NET_ADMIN | CEP_CAP_SYS_ADMIN | CEP_CAP_SYS_PTRACE)

static unsigned caps_of(const char *type, enum cep_caps_where w)
{
	unsigned c = 0xdead;
	cep_err err = {0};
	cr_assert_eq(cep_caps_for(type, w, &c, NULL, &err), CEP_OK, "%s: %s",
	    type, err.msg);
	return c;
}

Test(caps, pod_column_is_what_runner_pods_always_had)
{
	bool cg = false;
	unsigned c = 0;
	cr_assert_eq(cep_caps_for("network-loss", CEP_CAPS_POD, &c, &cg, NULL),
	    CEP_OK);
	cr_assert_eq(c, NET);
	cr_assert(!cg);
	cr_assert_eq(caps_of("network-latency", CEP_CAPS_POD),
	    NET | CEP_CAP_NET_RAW);
	cr_assert_eq(caps_of("disk-fill", CEP_CAPS_POD),
	    CEP_CAP_SYS_PTRACE | CEP_CAP_DAC_OVERRIDE);
	cr_assert_eq(cep_caps_for("cpu-hog", CEP_CAPS_POD, &c, &cg, NULL),
	    CEP_OK);
	cr_assert_eq(c, CEP_CAP_SYS_PTRACE);
	cr_assert(cg, "hogs need the node's cgroupfs");
	cr_assert_eq(caps_of("pod-delete", CEP_CAPS_POD), 0);
}

Test(caps, host_column)
{
	static const struct {
		const char *type;
		unsigned want;
	} t[] = {
	    {"network-loss", NET},
	    {"network-partition", NET},
	    {"network-bandwidth", NET},
	    {"dns-error", NET},
	    {"network-latency", NET | CEP_CAP_NET_RAW},
	    {"network-corrupt", NET | CEP_CAP_NET_RAW},
	    {"network-duplicate", NET | CEP_CAP_NET_RAW},
	    {"cpu-hog", CEP_CAP_SYS_PTRACE | CEP_CAP_DAC_OVERRIDE},
	    {"memory-hog", CEP_CAP_SYS_PTRACE | CEP_CAP_DAC_OVERRIDE},
	    {"io-stress", CEP_CAP_SYS_PTRACE | CEP_CAP_DAC_OVERRIDE},
	    {"disk-fill", CEP_CAP_SYS_PTRACE | CEP_CAP_DAC_OVERRIDE},
	    {"process-kill", CEP_CAP_KILL},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		cr_assert_eq(caps_of(t[i].type, CEP_CAPS_HOST), t[i].want, "%s",
		    t[i].type);
	bool cg = false;
	unsigned c;
	cr_assert_eq(cep_caps_for("cpu-hog", CEP_CAPS_HOST, &c, &cg, NULL),
	    CEP_OK);
	cr_assert(!cg, "cgroupfs is a pod placement, not a host one");
}

Test(caps, unknown_types_are_refused)
{
	static const char *const bad[] = {"bogus", "", "http", "NETWORK-LOSS",
	    "network-loss ", NULL};
	for (size_t i = 0; bad[i] != NULL; i++) {
		unsigned c = 7;
		cep_err err = {0};
		cr_assert_eq(cep_caps_for(bad[i], CEP_CAPS_HOST, &c, NULL,
		                 &err),
		    CEP_NOT_FOUND, "\"%s\"", bad[i]);
		cr_assert_eq(c, 0);
		cr_assert(strstr(err.msg, "capability table") != NULL, "%s",
		    err.msg);
	}
	unsigned c = 7;
	cr_assert_eq(cep_caps_for(NULL, CEP_CAPS_HOST, &c, NULL, NULL),
	    CEP_NOT_FOUND);
	/* process-kill has no pod column: refused there, not "no caps" */
	cr_assert_eq(cep_caps_for("process-kill", CEP_CAPS_POD, &c, NULL, NULL),
	    CEP_NOT_FOUND);
}

Test(caps, union_refuses_all_for_one_unknown)
{
	const char *ok[] = {"network-loss", "process-kill", "cpu-hog"};
	unsigned c = 0;
	cr_assert_eq(cep_caps_union(ok, 3, CEP_CAPS_HOST, &c, NULL), CEP_OK);
	cr_assert_eq(c, NET | CEP_CAP_KILL | CEP_CAP_DAC_OVERRIDE);
	cr_assert_eq(cep_caps_union(ok, 0, CEP_CAPS_HOST, &c, NULL), CEP_OK);
	cr_assert_eq(c, 0, "no fault: no capability");
	const char *bad[] = {"network-loss", "rm-rf"};
	cep_err err = {0};
	cr_assert_eq(cep_caps_union(bad, 2, CEP_CAPS_HOST, &c, &err),
	    CEP_NOT_FOUND);
	cr_assert_eq(c, 0);
	cr_assert(strstr(err.msg, "rm-rf") != NULL);
}

Test(caps, mechanisms_of_cleanup_runners)
{
	unsigned c;
	cr_assert_eq(cep_caps_for_mechanism("nftables", &c, NULL), CEP_OK);
	cr_assert_eq(c, NET);
	cr_assert_eq(cep_caps_for_mechanism("tc-qdisc", &c, NULL), CEP_OK);
	cr_assert_eq(c, NET);
	cr_assert_eq(cep_caps_for_mechanism("disk-fill", &c, NULL), CEP_OK);
	cr_assert_eq(c, CEP_CAP_SYS_PTRACE | CEP_CAP_DAC_OVERRIDE);
	/* not node mechanisms: nothing for a cleanup runner to do */
	static const char *const no[] = {"signal", "k8s-scale", "x", NULL};
	for (size_t i = 0; no[i] != NULL; i++)
		cr_assert_eq(cep_caps_for_mechanism(no[i], &c, NULL),
		    CEP_NOT_FOUND, "%s", no[i]);
	cr_assert_eq(cep_caps_for_mechanism(NULL, &c, NULL), CEP_NOT_FOUND);
}

Test(caps, names_and_linux_numbers)
{
	cr_assert_str_eq(cep_caps_name(CEP_CAP_NET_ADMIN), "NET_ADMIN");
	cr_assert_str_eq(cep_caps_name(CEP_CAP_KILL), "KILL");
	cr_assert_null(cep_caps_name(3));
	cr_assert_null(cep_caps_name(0));
	cr_assert_null(cep_caps_name(1u << 20));
	cr_assert_eq(cep_caps_linux(CEP_CAP_NET_ADMIN), CAP_NET_ADMIN);
	cr_assert_eq(cep_caps_linux(CEP_CAP_NET_RAW), CAP_NET_RAW);
	cr_assert_eq(cep_caps_linux(CEP_CAP_SYS_ADMIN), CAP_SYS_ADMIN);
	cr_assert_eq(cep_caps_linux(CEP_CAP_SYS_PTRACE), CAP_SYS_PTRACE);
	cr_assert_eq(cep_caps_linux(CEP_CAP_DAC_OVERRIDE), CAP_DAC_OVERRIDE);
	cr_assert_eq(cep_caps_linux(CEP_CAP_KILL), CAP_KILL);
	cr_assert_eq(cep_caps_linux(1u << 9), -1);
	/* every bit of CEP_CAP_ALL is named and numbered */
	for (unsigned b = 1; b & CEP_CAP_ALL; b <<= 1) {
		cr_assert_not_null(cep_caps_name(b));
		cr_assert_geq(cep_caps_linux(b), 0);
	}
	cr_assert_eq(cep_caps_linux_mask(NET),
	    (1ull << 12) | (1ull << 21) | (1ull << 19));
	cr_assert_eq(cep_caps_linux_mask(0), 0);
	char buf[64];
	cep_caps_text(NET | CEP_CAP_KILL, buf, sizeof(buf));
	cr_assert_str_eq(buf, "NET_ADMIN,SYS_ADMIN,SYS_PTRACE,KILL");
	cep_caps_text(0, buf, sizeof(buf));
	cr_assert_str_eq(buf, "");
	cep_caps_text(CEP_CAP_ALL, buf, 8); /* truncated, terminated */
	cr_assert_lt(strlen(buf), 8);
}
