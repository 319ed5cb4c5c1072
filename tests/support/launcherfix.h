/* launcherfix.h - a cep-launcher core on ipc in a fresh directory with a
 * stand-in cep-runner (a shell script of that name), and a client dialing
 * it: the fixture of tests/launcher/ (the Launcher calls and Inspect). */
#ifndef CEP_LAUNCHERFIX_H
#define CEP_LAUNCHERFIX_H

#include <stdbool.h>
#include <sys/types.h>

#include "launcher.h"
#include "rpc.h"

typedef struct cep_test_launcher {
	char *dir;         /* cep_test_tmpdir(tag) */
	char bin[4096];    /* <dir>/cep-runner, the script */
	char runs[4096];   /* <dir>/runs */
	char url[4200];    /* ipc://<dir>/launcher.sock */
	cep_launcher *L;   /* NULL until cep_test_launcher_start */
	cep_rpc_client *C; /* dials url */
} cep_test_launcher;

/* The directory, the runner script and the client; asserts (Criterion). */
void cep_test_launcher_setup(cep_test_launcher *t, const char *tag,
    const char *runner_script);
/* Starts the launcher for peers of uid allow (stop wait 2 s). */
void cep_test_launcher_start(cep_test_launcher *t, uid_t allow, bool set_caps);
/* Frees the launcher and the client, removes the directory. */
void cep_test_launcher_teardown(cep_test_launcher *t);

#endif
