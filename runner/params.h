/*
 * params.h - reading experiment parameters with the runner's defaults.
 *
 * lib/exp validates kinds and bounds; these wrappers add what the runner
 * needs on top: a default when the key is absent, and one accessor for
 * numbers whether the schema stores them as int or as number.
 */
#ifndef CEP_RUNNER_PARAMS_H
#define CEP_RUNNER_PARAMS_H

#include <stdint.h>

#include "exp.h"

int64_t runner_param_int(const cep_exp_item *it, const char *key, int64_t dflt);
/* Durations: ms (the model already converted "2s"). */
int64_t runner_param_ms(const cep_exp_item *it, const char *key, int64_t dflt);
double runner_param_num(const cep_exp_item *it, const char *key, double dflt);
const char *runner_param_str(const cep_exp_item *it, const char *key,
    const char *dflt);

#endif
