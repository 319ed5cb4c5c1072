/*
 * cfg_edit.h - cep.yaml as cepctl writes it: YAML emitted through libyaml
 * (never built by hand), and the settings of `cepctl init` added to a
 * cep.yaml that already exists (the package's conffile, or an operator's)
 * without re-emitting it, so its comments and layout stay as they are.
 *
 * The rule (docs/configuration.md, "An existing cep.yaml"): a setting
 * whose key the file does not have is added; one the file has with the
 * same value changes nothing; one the file has with another value is
 * refused with the key's file:line:col - init changes nothing an operator
 * wrote unless told to: with replace (--replace-config-keys) a one-line
 * value is replaced in place. The edited text must load with the daemons'
 * own loader to the wanted values and must differ from the old one by
 * exactly those keys, else nothing is written; the file is replaced
 * atomically with its mode and owner.
 */
#ifndef CEPCTL_CFG_EDIT_H
#define CEPCTL_CFG_EDIT_H

#include <stdbool.h>
#include <yaml.h>

#include "config.h"
#include "err.h"

/* libyaml emission, 0 or -1: "" is emitted double-quoted (a string, not
 * a null). */
int cepctl_emit(yaml_emitter_t *em, yaml_event_t *ev);
int cepctl_emit_scalar(yaml_emitter_t *em, const char *s);
int cepctl_emit_kv(yaml_emitter_t *em, const char *k, const char *v);
int cepctl_emit_map_start(yaml_emitter_t *em, bool flow);
int cepctl_emit_map_end(yaml_emitter_t *em);

/* The settings `cepctl init` takes as flags, by key. */
enum cepctl_setting {
	CEPCTL_SET_APPLIANCE,        /* appliance          --appliance */
	CEPCTL_SET_LISTEN,           /* relay.listen       --relay-listen */
	CEPCTL_SET_ADVERTISE,        /* relay.advertise    --relay-advertise */
	CEPCTL_SET_RELAY_METRICS,    /* relay.metrics      --relay-metrics */
	CEPCTL_SET_DELEGATE_METRICS, /* delegate.metrics   --delegate-metrics */
	CEPCTL_SET_CP_URL,           /* controlPlane.url   --control-plane */
	CEPCTL_SET_CP_CA,            /* controlPlane.caFile */
	CEPCTL_SET_CP_TOKEN,         /* controlPlane.tokenFile */
	CEPCTL_SET_CP_PROXY,         /* controlPlane.proxy */
	CEPCTL_SET_N
};

typedef struct cepctl_cfg_edit cepctl_cfg_edit;

/* Reads p->config/cep.yaml and prepares the text with the settings of
 * want[] (NULL = not given) added (and, with replace, replaced). Writes
 * nothing. Errors: a conflicting value (file:line:col of the key), a file
 * that does not load, a section init cannot add to, a value it cannot
 * replace; all say what to do. */
int cepctl_cfg_edit_plan(const cep_paths *p,
    const char *const want[CEPCTL_SET_N], bool replace, cepctl_cfg_edit **out,
    cep_err *err);
/* "controlPlane.url, controlPlane.tokenFile", "" if nothing is added. */
const char *cepctl_cfg_edit_added(const cepctl_cfg_edit *e);
/* The same for the keys whose values were replaced. */
const char *cepctl_cfg_edit_changed(const cepctl_cfg_edit *e);
/* Replaces the file (temp + rename, same mode and owner) if anything is
 * added or replaced; nothing otherwise. */
int cepctl_cfg_edit_commit(cepctl_cfg_edit *e, cep_err *err);
void cepctl_cfg_edit_free(cepctl_cfg_edit *e);

#endif
