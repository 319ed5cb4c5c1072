/*
 * fault_net.c - target, table and filters shared by the network faults
 * (see fault_net.h). The filters are parsed into lib/node's typed spec
 * (nft.h), which checks them again and alone writes nft's text.
 */
#define _GNU_SOURCE
#include "fault_net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fault_target.h"
#include "params.h"
#include "clock.h"

/* describe -> inject hand-over: the engine describes then injects the
 * same item on the same thread. */
#define MAX_SLOTS 64
static struct slot {
	const cep_exp_item *it;
	unsigned n;
	cep_netns_id id;
} slots[MAX_SLOTS];
static unsigned next_n;

static struct slot *slot_of(const cep_exp_item *it, bool create)
{
	for (unsigned i = 0; i < MAX_SLOTS; i++)
		if (slots[i].it == it)
			return &slots[i];
	if (!create)
		return NULL;
	struct slot *s = &slots[next_n % MAX_SLOTS];
	s->it = it;
	s->n = next_n++;
	return s;
}

/* Run-wide settings from the assignment (runner_net_configure). */
static bool allow_host;
static uint16_t relay_port;

/* "tls+tcp://host:port" or "tls+tcp://[v6]:port" -> port; anything else
 * (ipc://, no port) -> 0: no TCP lifeline to exempt. */
static uint16_t url_port(const char *url)
{
	const char *hp = url ? strstr(url, "://") : NULL;
	if (hp == NULL || strncmp(url, "ipc:", 4) == 0)
		return 0;
	hp += 3;
	const char *br = strrchr(hp, ']');
	const char *colon = strrchr(br ? br : hp, ':');
	if (colon == NULL)
		return 0;
	char *end;
	errno = 0;
	long v = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || (*end && *end != '/') || v < 1 ||
	    v > 65535)
		return 0;
	return (uint16_t)v;
}

void runner_net_configure(bool allow_host_netns, const char *relay_url)
{
	allow_host = allow_host_netns;
	relay_port = url_port(relay_url);
}

uint16_t runner_net_relay_port(void)
{
	return relay_port;
}

int runner_net_target_allowed(const char *type, const cep_netns_id *id,
    const char *path, cep_err *err)
{
	if (!cep_netns_is_host(id) || allow_host)
		return CEP_OK;
	return cep_err_set(err, CEP_PERMISSION_DENIED,
	    "%s: %s is the host's network namespace (pid 1's or the runner's "
	    "own); refused (policy.network.allowHostNetns is false)",
	    type, path);
}

bool runner_net_lifeline(const cep_net_fault *f, uint16_t *port)
{
	*port = relay_port;
	return relay_port != 0 && cep_netns_is_host(&f->id);
}

static int open_target(const cep_exp_item *it, int *fd, cep_netns_id *id,
    char *path, size_t plen, cep_err *err)
{
	int64_t pid;
	const char *ns = runner_param_str(it, "netns", NULL);
	int rc = runner_fault_target_pid(it, &pid, err);
	if (rc != CEP_OK)
		return rc;
	if ((pid > 0) == (ns != NULL))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "%s: give exactly one of pid, netns and pod",
		    cep_exp_item_type(it));
	rc = cep_netns_open(pid, ns, fd, id, path, plen, err);
	if (rc != CEP_OK)
		return cep_err_wrap(err, "%s target", cep_exp_item_type(it));
	rc = runner_net_target_allowed(cep_exp_item_type(it), id, path, err);
	if (rc != CEP_OK) {
		close(*fd);
		*fd = -1; /* runner_net_free closes nsfd */
	}
	return rc;
}

bool runner_net_target_is_host(const cep_exp_item *it)
{
	int fd;
	cep_netns_id id;
	cep_err e = {0};
	int64_t pid;
	const char *ns = runner_param_str(it, "netns", NULL);
	if (runner_fault_target_pid(it, &pid, &e) != CEP_OK ||
	    cep_netns_open(pid, ns, &fd, &id, NULL, 0, &e) != CEP_OK)
		return false;
	close(fd);
	return cep_netns_is_host(&id);
}

int runner_net_describe(const cep_exp_item *it, char *target, size_t tlen,
    json_t **undo, cep_err *err)
{
	int fd;
	cep_netns_id id;
	char path[1024], table[CEP_NFT_TABLE_MAX];
	int rc = open_target(it, &fd, &id, path, sizeof(path), err);
	if (rc != CEP_OK)
		return rc;
	close(fd);
	struct slot *s = slot_of(it, true);
	s->id = id;
	rc = cep_nft_table_name(runner_fault_run_id(), s->n, table,
	    sizeof(table), err);
	if (rc != CEP_OK)
		return rc;
	snprintf(target, tlen, "network namespace %s (inode %llu), table %s",
	    path, (unsigned long long)id.ino, table);
	*undo = cep_nft_undo_json(&id, path, table);
	return *undo ? CEP_OK :
	               cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
	                   "no memory for the undo record");
}

int runner_net_open(const cep_exp_item *it, cep_net_fault *f, cep_err *err)
{
	memset(f, 0, sizeof(*f));
	f->nsfd = -1;
	struct slot *s = slot_of(it, false);
	if (s == NULL)
		return cep_err_set(err, CEP_INTERNAL,
		    "%s: injected before it was described",
		    cep_exp_item_type(it));
	int rc = open_target(it, &f->nsfd, &f->id, f->path, sizeof(f->path),
	    err);
	if (rc != CEP_OK)
		return rc;
	if (f->id.ino != s->id.ino || f->id.dev != s->id.dev) {
		close(f->nsfd);
		f->nsfd = -1;
		return cep_err_set(err, CEP_ABORTED,
		    "%s: the target's network "
		    "namespace changed since the fault was recorded",
		    cep_exp_item_type(it));
	}
	f->n = s->n;
	return cep_nft_table_name(runner_fault_run_id(), s->n, f->table,
	    sizeof(f->table), err);
}

static unsigned dirs_of(const cep_exp_item *it)
{
	const char *d = runner_param_str(it, "direction", "egress");
	return strcmp(d, "both") == 0 ? CEP_NFT_OUT | CEP_NFT_IN :
	    strcmp(d, "ingress") == 0 ? CEP_NFT_IN :
	    strcmp(d, "egress") == 0  ? CEP_NFT_OUT :
	                                0;
}

/* Expiry of the armed element: the run's deadline (plus the delegate's
 * grace), or the fault's duration when no deadline is known. */
static int64_t armed_ms(const cep_exp_item *it)
{
	int64_t dl = runner_fault_deadline_mono();
	int64_t t = dl > 0 ? dl - cep_clock_mono_ms() + 10000 :
	                     runner_param_ms(it, "duration", 60000) + 60000;
	return t < 1000 ? 1000 : t;
}

static int parse_filters(const cep_exp_item *it, cep_nft_spec *s, cep_err *err)
{
	size_t nc = cep_exp_list_len(it, "cidrs");
	size_t np = cep_exp_list_len(it, "ports");
	if (nc > CEP_NFT_CIDRS_MAX || np > CEP_NFT_PORTS_MAX)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "%s: at most %d "
		    "cidrs and %d ports",
		    cep_exp_item_type(it), CEP_NFT_CIDRS_MAX,
		    CEP_NFT_PORTS_MAX);
	for (size_t i = 0; i < nc; i++) {
		int rc = cep_nft_cidr_parse(cep_exp_list_at(it, "cidrs", i),
		    &s->cidrs[i], err);
		if (rc != CEP_OK)
			return rc;
	}
	for (size_t i = 0; i < np; i++) {
		int rc = cep_nft_ports_parse(cep_exp_list_at(it, "ports", i),
		    &s->ports[i], err);
		if (rc != CEP_OK)
			return rc;
	}
	s->ncidrs = nc;
	s->nports = np;
	return CEP_OK;
}

int runner_net_spec(const cep_exp_item *it, const cep_net_fault *f,
    cep_nft_spec *s, cep_err *err)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->table, sizeof(s->table), "%s", f->table);
	s->armed_ms = armed_ms(it);
	s->dirs = dirs_of(it);
	if (!runner_net_lifeline(f, &s->lifeline_port))
		s->lifeline_port = 0;
	return parse_filters(it, s, err);
}

int runner_net_prepare(const cep_exp_item *it, cep_net_fault **f,
    cep_nft_spec **s, cep_err *err)
{
	*f = calloc(1, sizeof(**f));
	*s = calloc(1, sizeof(**s));
	if (*f != NULL)
		(*f)->nsfd = -1;
	int rc = *f != NULL && *s != NULL ?
	    CEP_OK :
	    cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "no memory");
	if (rc == CEP_OK)
		rc = runner_net_open(it, *f, err);
	if (rc == CEP_OK)
		rc = runner_net_spec(it, *f, *s, err);
	if (rc != CEP_OK) {
		runner_net_free(*f);
		free(*s);
		*f = NULL;
		*s = NULL;
	}
	return rc;
}

int runner_net_revert(cep_net_fault *f, cep_err *err)
{
	int rc = cep_nft_delete_table(f->nsfd, f->table, err);
	if (f->worker > 0) {
		if (f->worker_grace_ms > 0)
			cep_clock_sleep_ms(f->worker_grace_ms);
		cep_err kerr = {0};
		int krc = runner_fault_kill_workers(&f->worker, 1, &kerr);
		if (krc != CEP_OK && rc == CEP_OK) {
			rc = krc;
			if (err != NULL)
				*err = kerr;
		}
		f->worker = 0;
	}
	return rc;
}

int runner_net_revert_free(void *state, cep_err *err)
{
	int rc = runner_net_revert(state, err);
	runner_net_free(state);
	return rc;
}

void runner_net_free(cep_net_fault *f)
{
	if (f == NULL)
		return;
	if (f->nsfd >= 0)
		close(f->nsfd);
	free(f);
}
