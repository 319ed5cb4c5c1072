/* fuzz_exp.c - libFuzzer target: cep_exp_parse on arbitrary bytes; on
 * success every accessor of every item is read. Must never crash or leak;
 * a failure must come with at least one message. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "exp.h"

static size_t read_item(const cep_exp_item *it, const cep_exp_param_spec *ps)
{
	size_t sum = strlen(cep_exp_item_name(it)) +
	    strlen(cep_exp_item_type(it));
	for (; ps != NULL && ps->key != NULL; ps++) {
		if (!cep_exp_has(it, ps->key))
			continue;
		const char *s = cep_exp_str(it, ps->key);
		sum += s ? strlen(s) : 0;
		sum += (size_t)cep_exp_int(it, ps->key);
		sum += (size_t)cep_exp_num(it, ps->key) +
		    cep_exp_bool(it, ps->key);
		for (size_t i = 0; i < cep_exp_list_len(it, ps->key); i++) {
			const char *a = cep_exp_list_at(it, ps->key, i);
			const char *k = cep_exp_map_key(it, ps->key, i);
			sum += (a ? strlen(a) : 0) + (k ? strlen(k) : 0);
		}
	}
	return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cep_exp *e = NULL;
	cep_exp_diags d;
	cep_err err;
	if (cep_exp_parse((const char *)data, size, "fuzz.yaml", &e, &d,
	        &err) != CEP_OK) {
		if (d.n == 0 || err.msg[0] == '\0')
			__builtin_trap();
		return 0;
	}
	size_t sum = strlen(cep_exp_name(e)) + strlen(cep_exp_source(e));
	sum += (size_t)cep_exp_duration_ms(e) + (size_t)cep_exp_deadman_ms(e);
	for (size_t i = 0; i < cep_exp_nfaults(e); i++) {
		const cep_exp_item *it = cep_exp_fault(e, i);
		const cep_exp_type_spec *ts = cep_exp_fault_spec(
		    cep_exp_item_type(it));
		sum += read_item(it, ts ? ts->params : NULL);
	}
	for (size_t i = 0; i < cep_exp_nprobes(e); i++) {
		const cep_exp_item *it = cep_exp_probe(e, i);
		const cep_exp_type_spec *ts = cep_exp_probe_spec(
		    cep_exp_item_type(it));
		sum += read_item(it, ts ? ts->params : NULL);
		sum += read_item(it, cep_exp_probe_common());
		sum += strlen(cep_exp_probe_mode_name(cep_exp_probe_mode(it)));
	}
	for (size_t i = 0; i < cep_exp_nlabels(e); i++)
		sum += strlen(cep_exp_label_key(e, i)) +
		    strlen(cep_exp_label_val(e, i));
	volatile size_t sink = sum;
	(void)sink;
	cep_exp_free(e);
	return 0;
}
