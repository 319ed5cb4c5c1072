/* connector_int.h - between connector.c (objects, folder, namespace rule)
 * and connector_parse.c (the file grammar). Not for other modules. */
#ifndef CEP_CONNECTOR_INT_H
#define CEP_CONNECTOR_INT_H

#include <stdbool.h>

#include "connector.h"
#include "yamldoc.h"

/* Fills c (which holds the defaults) from a parsed file; dir is the
 * folder relative kubeconfig paths are taken from. */
int cep_connector_parse(const cep_yaml_doc *doc, const char *dir,
    cep_connector *c, cep_err *err);
/* An RFC 1123 label: namespace and connector names. */
bool cep_connector_dns_label(const char *s);

#endif
