/*
 * config_int.h - what config.c's section loaders share with the loaders
 * in other files (config_cp.c); not for use outside lib/conf/config*.c.
 *
 * Every loader reports through the cep_cfg_loader: the first problem ends
 * the load with file:line:col and the dotted key path ("controlPlane.url").
 */
#ifndef CEP_CONFIG_INT_H
#define CEP_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "yamldoc.h"

struct cep_cfg_loader {
	const cep_yaml_doc *doc;
	const char *dir;   /* the config folder: relative paths start here */
	cep_err *err;
	char path[64];     /* "policy.targets" - for messages */
};

/* "<path>.<key>: <what>, expected <expected>" at n's position. */
int cep_cfg_bad(struct cep_cfg_loader *l, const cep_yaml_node *n,
    const char *key, const char *what, const char *expected);
/* Unknown keys of map are errors that list the known ones. */
int cep_cfg_check_keys(struct cep_cfg_loader *l, const cep_yaml_node *map,
    const char *const *keys);
/* A section: absent or null is fine (*out NULL: defaults), else a mapping
 * with only keys; l->path grows by ".key". */
int cep_cfg_section(struct cep_cfg_loader *l, const cep_yaml_node *parent,
    const char *key, const char *const *keys, const cep_yaml_node **out);
const char *cep_cfg_scalar(struct cep_cfg_loader *l, const cep_yaml_node *n,
    const char *key, const char *expected);
/* Absent keys leave *dst / *out as they are (the defaults). */
int cep_cfg_get_string(struct cep_cfg_loader *l, const cep_yaml_node *map,
    const char *key, bool (*ok)(const char *), const char *expected,
    char *dst, size_t dlen);
int cep_cfg_get_int(struct cep_cfg_loader *l, const cep_yaml_node *map,
    const char *key, long min, long max, int *out);

/* config_cp.c: the controlPlane section. */
int cep_cfg_load_cp(struct cep_cfg_loader *l, const cep_yaml_node *root,
    cep_cp_opts *o);

#endif
