/* test_runid.c - making, checking and parsing run ids. */
#include <criterion/criterion.h>
#include <string.h>

#include "run_id.h"

Test(runid, new_ids_are_valid_and_distinct)
{
	cep_run_id a, b;
	cep_run_id_new(&a);
	cep_run_id_new(&b);
	cr_assert(cep_run_id_valid(a.s));
	cr_assert_eq(strlen(a.s), CEP_RUN_ID_LEN);
	cr_assert_str_neq(a.s, b.s);
	cr_assert(!cep_run_id_valid("r-../../etc/pass"));
	cr_assert(!cep_run_id_valid("r-0123456789ABCDEF"));
	cr_assert(!cep_run_id_valid(NULL));
}

Test(runid, parse_copies_only_valid_ids)
{
	cep_run_id id;
	cr_assert(cep_run_id_parse(&id, "r-0123456789abcdef"));
	cr_assert_str_eq(id.s, "r-0123456789abcdef");
	cr_assert(cep_run_id_is_set(&id));
	cr_assert(cep_run_id_is(&id, "r-0123456789abcdef"));
	cr_assert(!cep_run_id_is(&id, "r-0123456789abcdee"));
	cr_assert(!cep_run_id_is(&id, NULL));

	static const char *bad[] = {
	    NULL,
	    "",
	    "r-",
	    "r-0123456789abcde",
	    "r-0123456789abcdef0",
	    "x-0123456789abcdef",
	    "r-0123456789abcdeg",
	    "r-../../etc/passwd",
	    "r-0123456789abcdef\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cep_run_id_new(&id);
		cr_assert(!cep_run_id_parse(&id, bad[i]), "accepted %s",
		    bad[i] ? bad[i] : "NULL");
		cr_assert_str_eq(id.s, "", "left %s after a refusal", id.s);
		cr_assert(!cep_run_id_is_set(&id));
		cr_assert(!cep_run_id_is(&id, ""));
	}
}

Test(runid, clear_empties)
{
	cep_run_id id;
	cep_run_id_new(&id);
	cep_run_id_clear(&id);
	cr_assert(!cep_run_id_is_set(&id));
	cr_assert_str_eq(id.s, "");
}
