/*
 * policy.h - the blast-radius policy (config.h: cep_policy) applied to an
 * experiment before anything is created.
 */
#ifndef CEP_POLICY_H
#define CEP_POLICY_H

#include <stddef.h>

#include "config.h"
#include "err.h"
#include "exp.h"

/* CEP_OK, or FAILED_PRECONDITION with "policy: ..." naming the rule and
 * its config key. active_runs: runs not yet final. */
int cep_policy_check(const cep_policy *p, const cep_exp *e,
    size_t active_runs, cep_err *err);

#endif
