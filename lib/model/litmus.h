/*
 * litmus.h - LitmusChaos ChaosEngine files (litmuschaos.io/v1alpha1) read
 * as cep experiments (docs/litmus.md).
 *
 * A ChaosEngine is turned into the equivalent native experiment's YAML,
 * which cep_exp_parse then reads like any other: the model, the delegate
 * and the runner see one format. Every field and variable of the engine
 * is either mapped, accepted as something only Litmus needs (how it
 * reaches a node: container runtime, socket, helper image) or refused by
 * name with file:line:col - never ignored. cep_exp_parse calls this for
 * a document whose apiVersion is litmuschaos.io/... and kind ChaosEngine.
 */
#ifndef CEP_LITMUS_H
#define CEP_LITMUS_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "exp.h"
#include "yamldoc.h"

/* Is this document a ChaosEngine (apiVersion litmuschaos.io/..., kind
 * ChaosEngine)? */
bool cep_litmus_is_engine(const cep_yaml_node *root);

/* ChaosEngine YAML -> native experiment YAML (*native, malloc'd). On
 * failure INVALID_ARGUMENT, err holds the first problem and diags (if not
 * NULL) all of them, positioned in fname. */
int cep_litmus_convert(const char *yaml, size_t len, const char *fname,
    char **native, cep_exp_diags *diags, cep_err *err);

/* The Litmus experiments cep runs, and those it refuses (NULL-terminated),
 * for docs and tests. */
const char *const *cep_litmus_supported(void);
const char *const *cep_litmus_refused(void);

#endif
