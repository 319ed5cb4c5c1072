/* params.c - parameter access with defaults (see params.h). */
#include "params.h"

#include <stdlib.h>

int64_t runner_param_int(const cep_exp_item *it, const char *key, int64_t dflt)
{
	if (!cep_exp_has(it, key))
		return dflt;
	int64_t v = cep_exp_int(it, key);
	if (v == 0) {
		double d = cep_exp_num(it, key);
		if (d != 0)
			v = (int64_t)d;
	}
	return v;
}

int64_t runner_param_ms(const cep_exp_item *it, const char *key, int64_t dflt)
{
	return runner_param_int(it, key, dflt);
}

double runner_param_num(const cep_exp_item *it, const char *key, double dflt)
{
	if (!cep_exp_has(it, key))
		return dflt;
	double d = cep_exp_num(it, key);
	if (d == 0)
		d = (double)cep_exp_int(it, key);
	return d;
}

const char *runner_param_str(const cep_exp_item *it, const char *key,
    const char *dflt)
{
	const char *s = cep_exp_has(it, key) ? cep_exp_str(it, key) : NULL;
	return s != NULL ? s : dflt;
}
