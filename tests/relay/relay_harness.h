/*
 * relay_harness.h - what the relay's test programs share: a temp appliance
 * home, a fake delegate, test runners and the test as the delegate's
 * client. See relay_harness.c.
 *
 * tests/CMakeLists.txt makes one program of each test_*.c (plus
 * support/testutil.c), so each relay test program includes the harness
 * source once: #include "relay_harness.c".
 */
#ifndef CEP_RELAY_HARNESS_H
#define CEP_RELAY_HARNESS_H

#include <criterion/criterion.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cep.pb-c.h"
#include "config.h"
#include "pki.h"
#include "relay.h"
#include "rpc.h"

#define APPLIANCE "test-appl"
#define MAX_RUNS 256
#define MAX_SEQ 64
#define CALL_MS 10000

typedef struct fake_delegate {
	cep_rpc_server *srv;
	pthread_mutex_t mu;
	uint64_t event_calls, events, dupes, foreign;
	uint64_t faults, reverted, connected;
	uint8_t seen[MAX_RUNS][MAX_SEQ];
	uint64_t acked[MAX_RUNS];
	char last_connected[32];
} fake_delegate;

typedef struct runner {
	char run_id[24];
	char uri[256];
	char *cert_pem, *key_pem;
	uint8_t *der;
	size_t der_len;
	cep_rpc_client *cli;
} runner;

typedef struct env {
	char *home;
	cep_paths paths;
	cep_config cfg;
	cep_pki_ca *ca;
	fake_delegate fd;
	cep_relay *relay;
	cep_rpc_client *dlg; /* the test as the delegate */
	char url[64];        /* runners dial this */
	FILE *saved_stderr;
	char logpath[PATH_MAX + 16];
	runner *all[MAX_RUNS + 16]; /* freed at teardown */
	size_t nall;
	runner *granted[MAX_RUNS + 16];
	size_t ngranted;
	const char *finished[8];
	size_t nfinished;
} env;

typedef struct fd_snap {
	uint64_t event_calls, faults, reverted, connected;
} fd_snap;

typedef struct watch_arg {
	runner *rn;
	uint64_t after;
	int timeout_ms;
	int rc;
	size_t n;
	uint64_t seq;
	int kind;
	int64_t t_done;
	char err[CEP_ERR_MSG_MAX];
} watch_arg;

extern env E;

int run_index(const char *run_id);
void setup(void);
/* setup, with cfg changed by tweak before the relay starts */
void setup_with(void (*tweak)(cep_config *cfg));
void teardown(void);
runner *runner_new(unsigned idx, cep_pki_ca *ca, int64_t nb, int64_t na);
void runner_connect(runner *rn);
int rcall(runner *rn, const char *method, const ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *d, ProtobufCMessage **rep, cep_err *err);
int runner_prove(runner *rn, bool corrupt, cep_err *err);
int push(runner *rn, const char *batch_run, const char *event_run,
    uint64_t first, size_t n, uint64_t *acked, cep_err *err);
int get_assignment(runner *rn, const char *run_id, cep_err *err,
    Cep__V1__Assignment **out);
int dcall(const char *method, const ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *d, ProtobufCMessage **rep, cep_err *err);
void sync_grants(void);
void grant(runner *rn);
void ungrant(runner *rn);
int send_abort(const char *run_id, uint64_t seq, cep_err *err);
Cep__V1__RelayStats *stats(void);
uint64_t refusals(const char *reason);
int log_lines(const char *a, const char *b, const char *c);
fd_snap fd_snapshot(void);
void assert_fd_unchanged(fd_snap before);
void assert_good_runner_served(unsigned idx);
void *watch_thread(void *p);
uint64_t stat_calls(void);
void home_only(void);
void home_only_fini(void);

#endif
