/* runstate.h - names and finality of a run's states (RunState in
 * proto/cep.proto), for the delegate, cepctl and logs alike. */
#ifndef CEP_RUNSTATE_H
#define CEP_RUNSTATE_H

#include <stdbool.h>

#include "cep.pb-c.h"

/* "PENDING", "RUNNING", "PASSED", ...; "UNSPECIFIED" for anything else. */
const char *cep_runstate_name(Cep__V1__RunState st);
/* PASSED, FAILED, ABORTED, ERROR: nothing happens to the run any more. */
bool cep_runstate_final(Cep__V1__RunState st);

#endif
