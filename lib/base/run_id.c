/* run_id.c - making, checking and parsing run ids. */
#define _GNU_SOURCE
#include "run_id.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void cep_run_id_new(cep_run_id *id)
{
	uint8_t b[8];
	if (cep_util_random(b, sizeof(b), NULL) != CEP_OK)
		abort(); /* no kernel randomness: nothing safe to do */
	snprintf(id->s, sizeof(id->s), "r-%02x%02x%02x%02x%02x%02x%02x%02x",
	    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]);
}

bool cep_run_id_valid(const char *s)
{
	if (s == NULL || strnlen(s, CEP_RUN_ID_LEN + 1) != CEP_RUN_ID_LEN ||
	    s[0] != 'r' || s[1] != '-')
		return false;
	for (int i = 2; i < CEP_RUN_ID_LEN; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	return true;
}

bool cep_run_id_parse(cep_run_id *id, const char *s)
{
	if (!cep_run_id_valid(s)) {
		cep_run_id_clear(id);
		return false;
	}
	memcpy(id->s, s, CEP_RUN_ID_LEN + 1);
	return true;
}

void cep_run_id_clear(cep_run_id *id)
{
	memset(id->s, 0, sizeof(id->s));
}

bool cep_run_id_is_set(const cep_run_id *id)
{
	return id->s[0] != '\0';
}

bool cep_run_id_is(const cep_run_id *id, const char *s)
{
	return s != NULL && id->s[0] != '\0' && strcmp(id->s, s) == 0;
}
