/*
 * run_id.h - the run id: "r-" and 16 lowercase hex digits from getrandom().
 * A one-field struct so that a run id cannot be mixed up with other
 * strings (a pod name, a task id) and so that every buffer holding one has
 * the same size. Text from outside (the wire, a file, argv) enters the type
 * only through cep_run_id_parse, which checks the shape: run ids reach file
 * names, so the check is the gate against "../" and friends.
 */
#ifndef CEP_RUN_ID_H
#define CEP_RUN_ID_H

#include <stdbool.h>

#define CEP_RUN_ID_LEN 18 /* strlen of a valid run id */

typedef struct cep_run_id {
	char s[24];
} cep_run_id;

/* A fresh random run id. */
void cep_run_id_new(cep_run_id *id);
/* Accepts exactly the shape cep_run_id_new makes. */
bool cep_run_id_valid(const char *s);
/* The one way from outside text into the type: copies s when it is a
 * valid run id and returns true; otherwise leaves *id empty ("") and
 * returns false. */
bool cep_run_id_parse(cep_run_id *id, const char *s);
/* Empties *id: "no run" (a run id is never ""). */
void cep_run_id_clear(cep_run_id *id);
/* Whether *id holds a run id (is not empty). */
bool cep_run_id_is_set(const cep_run_id *id);
/* Whether *id names the run s (false for NULL or an empty id). */
bool cep_run_id_is(const cep_run_id *id, const char *s);

#endif
