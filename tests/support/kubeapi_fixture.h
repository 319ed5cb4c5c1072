/*
 * kubeapi_fixture.h - the Kubernetes API test server (tests/kubeapi/) for C
 * tests: start it in a fresh temp dir, read what it wrote there
 * (kubeconfig-<user>, tokens.json, ca.crt, port), flip its /_test/
 * controls, stop it and remove the dir. See tests/kubeapi/README.md.
 */
#ifndef CEP_KUBEAPI_FIXTURE_H
#define CEP_KUBEAPI_FIXTURE_H

#include <jansson.h>

typedef struct kubeapi_fixture kubeapi_fixture;

/* Runs `python3 $CEP_SRC_DIR/tests/kubeapi/kubeapi.py --dir DIR args...`
 * (args NULL-terminated, may be NULL) and waits up to 20 s for DIR/ready.
 * NULL on failure, after printing the server's log to stderr. */
kubeapi_fixture *kubeapi_start(const char *const *args);
/* Any other Python test server that speaks the same start-up protocol
 * (--dir DIR; writes DIR/port, then DIR/ready; logs to DIR/server.log):
 * script relative to $CEP_SRC_DIR, e.g. "tests/lib/cp/cp_stub.py". Stop it
 * with kubeapi_stop; kubeapi_dir and kubeapi_port apply. */
kubeapi_fixture *kubeapi_start_script(const char *script,
    const char *const *args);
/* SIGTERM, wait (SIGKILL after 10 s), remove the dir, free. NULL is fine. */
void kubeapi_stop(kubeapi_fixture *f);

const char *kubeapi_dir(const kubeapi_fixture *f);
int kubeapi_port(const kubeapi_fixture *f);
/* DIR/kubeconfig-<user>, or DIR/kubeconfig (admin) for user NULL.
 * Caller frees. */
char *kubeapi_kubeconfig(const kubeapi_fixture *f, const char *user);
/* user's token from DIR/tokens.json; NULL if absent. Caller frees. */
char *kubeapi_token(const kubeapi_fixture *f, const char *user);
/* POST json (NULL = "{}") to /_test/<name> (name "faults" or
 * "/_test/faults") with the admin token. Returns the HTTP status, -1 if
 * the server could not be reached. */
int kubeapi_control(kubeapi_fixture *f, const char *name, const char *json);
/* GET /_test/stats: {"requests": N, "byVerb": {...}, "injected": N}, or
 * NULL. Caller json_decref's. */
json_t *kubeapi_stats(kubeapi_fixture *f);

#endif
