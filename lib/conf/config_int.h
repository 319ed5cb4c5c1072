/*
 * config_int.h - what config.c shares with the loaders in other files
 * (config_cp.c); not for use outside lib/conf/config*.c.
 *
 * Every loader reads through one cep_yamlget (lib/base/yamlget.h): the
 * first problem ends the load with file:line:col and the dotted key path
 * ("controlPlane.url").
 */
#ifndef CEP_CONFIG_INT_H
#define CEP_CONFIG_INT_H

#include "config.h"
#include "yamldoc.h"
#include "yamlget.h"

/* config_cp.c: the controlPlane section; relative file paths start at
 * dir (the config folder). */
int cep_config_load_cp(cep_yamlget *l, const char *dir,
    const cep_yaml_node *root, cep_cp_opts *o);
/* A file path key: absolute, or relative to dir; "" is refused. */
int cep_config_get_file(cep_yamlget *l, const char *dir,
    const cep_yaml_node *map, const char *key, char *dst, size_t dlen);

#endif
