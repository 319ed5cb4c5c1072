/* fuzz_yaml.c - libFuzzer target: cep_yamldoc_parse on arbitrary bytes, then
 * a walk over every node and accessor. Must never crash, leak or hang. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "yamldoc.h"

static size_t walk(const cep_yaml_node *n, int depth)
{
	size_t sum = (size_t)cep_yamldoc_line(n) + (size_t)cep_yamldoc_col(n);
	const char *s = cep_yamldoc_scalar(n);
	if (s != NULL)
		sum += strlen(s) + cep_yamldoc_quoted(n);
	if (depth > 100)
		__builtin_trap(); /* the parser promised at most 64 levels */
	switch (cep_yamldoc_kind(n)) {
	case CEP_YAML_MAP:
		for (size_t i = 0; i < cep_yamldoc_len(n); i++) {
			const cep_yaml_node *k = cep_yamldoc_key_at(n, i);
			if (cep_yamldoc_scalar(k) == NULL)
				__builtin_trap(); /* keys are scalars */
			/* keys are unique (checked on small maps: get is
			 * linear, and large maps must not time the run out) */
			if (cep_yamldoc_len(n) <= 64 &&
			    cep_yamldoc_get(n, cep_yamldoc_scalar(k)) !=
			        cep_yamldoc_value_at(n, i))
				__builtin_trap();
			sum += walk(k, depth + 1);
			sum += walk(cep_yamldoc_value_at(n, i), depth + 1);
		}
		break;
	case CEP_YAML_SEQ:
		for (size_t i = 0; i < cep_yamldoc_len(n); i++)
			sum += walk(cep_yamldoc_at(n, i), depth + 1);
		break;
	default: break;
	}
	return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cep_yaml_doc *doc = NULL;
	cep_err err;
	if (cep_yamldoc_parse((const char *)data, size, "fuzz.yaml", &doc,
	        &err) != CEP_OK) {
		if (strncmp(err.msg, "fuzz.yaml", 9) != 0)
			__builtin_trap(); /* every error names the input */
		return 0;
	}
	volatile size_t sink = walk(cep_yamldoc_root(doc), 0);
	(void)sink;
	cep_yamldoc_free(doc);
	return 0;
}
