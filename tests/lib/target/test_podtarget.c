/* test_podtarget.c - reading a pod target from its Pod object: node,
 * container choice, and every reason a pod is not a usable target. */
#include <criterion/criterion.h>
#include <string.h>

#include "podtarget.h"

#define CID                                                             \
	"containerd://0123456789abcdef0123456789abcdef0123456789abcdef" \
	"0123456789abcdef"

static json_t *pod(const char *phase, const char *node, const char *cstats)
{
	char buf[2048];
	snprintf(buf, sizeof(buf),
	    "{\"metadata\": {\"name\": \"web-1\", "
	    "\"uid\": \"u-1\"}, \"spec\": {%s%s%s}, \"status\": {\"phase\": "
	    "\"%s\", \"containerStatuses\": [%s]}}",
	    node ? "\"nodeName\": \"" : "", node ? node : "", node ? "\"" : "",
	    phase, cstats);
	json_error_t je;
	json_t *p = json_loads(buf, 0, &je);
	cr_assert_not_null(p, "%s: %s", je.text, buf);
	return p;
}

#define RUNNING(name, id)                                 \
	"{\"name\": \"" name "\", \"containerID\": \"" id \
	"\", \"state\": {\"running\": {}}}"

static void fails(json_t *p, const char *container, int code, const char *want)
{
	cep_podtarget t;
	cep_err e = {0};
	cr_assert_eq(cep_podtarget_read(p, container, &t, &e), code, "%s",
	    e.msg);
	cr_assert(strstr(e.msg, want) != NULL, "\"%s\" lacks \"%s\"", e.msg,
	    want);
	cr_assert_str_eq(t.node, "");
	json_decref(p);
}

Test(podtarget, only_container_and_named)
{
	cep_podtarget t;
	cep_err e = {0};
	json_t *p = pod("Running", "node-2", RUNNING("app", CID));
	cr_assert_eq(cep_podtarget_read(p, NULL, &t, &e), CEP_OK, "%s", e.msg);
	cr_assert_str_eq(t.node, "node-2");
	cr_assert_str_eq(t.uid, "u-1");
	cr_assert_str_eq(t.container, "app");
	cr_assert_str_eq(t.container_id, CID);
	json_decref(p);
	p = pod("Running", "node-1",
	    RUNNING("app",
	        "cri-o://"
	        "ffffffff"
	        "ffffffffffffffffffffffffffffffffffffffffffffffffffffffff") ", " RUNNING("side",
	        CID));
	cr_assert_eq(cep_podtarget_read(p, "side", &t, &e), CEP_OK, "%s",
	    e.msg);
	cr_assert_str_eq(t.container_id, CID);
	json_decref(p);
}

Test(podtarget, unusable_pods)
{
	fails(pod("Pending", "node-1", ""), NULL, CEP_FAILED_PRECONDITION,
	    "pod web-1 is Pending, expected Running");
	fails(pod("Running", NULL, RUNNING("app", CID)), NULL,
	    CEP_FAILED_PRECONDITION, "not scheduled");
	fails(pod("Running", "n", RUNNING("a", CID) ", " RUNNING("b", CID)),
	    NULL, CEP_FAILED_PRECONDITION,
	    "has 2 containers (a, b), expected "
	    "container: NAME");
	fails(pod("Running", "n", RUNNING("a", CID)), "b",
	    CEP_FAILED_PRECONDITION, "has no container \"b\" (containers: a)");
	fails(pod("Running", "n",
	          "{\"name\": \"a\", \"state\": {\"waiting\": "
	          "{}}}"),
	    NULL, CEP_FAILED_PRECONDITION,
	    "container a of pod web-1 "
	    "is not running");
	fails(pod("Running", "n", RUNNING("a", "rkt://x")), NULL,
	    CEP_INVALID_ARGUMENT, "pod web-1 container a: container id");
	fails(pod("Running", "n", "1, \"x\", {\"name\": 7}"), NULL,
	    CEP_FAILED_PRECONDITION, "none reported");
	fails(json_pack("[]"), NULL, CEP_INVALID_ARGUMENT, "not a Pod");
	fails(json_pack("{s:s}", "status", "x"), NULL, CEP_INVALID_ARGUMENT,
	    "not a Pod");
}
