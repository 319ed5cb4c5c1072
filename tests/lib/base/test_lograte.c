/*
 * test_lograte.c - at most burst lines per key per interval, the rest
 * counted and told with the key's next line; peers keyed by address.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "lograte.h"

Test(lograte, burst_then_held_then_told)
{
	cep_lograte *l = NULL;
	uint64_t held = 99;
	cr_assert_eq(cep_lograte_new(&l, 1000, 2, NULL), CEP_OK);
	cr_assert(cep_lograte_take(l, "a", 5000, &held));
	cr_assert_eq(held, 0);
	cr_assert(cep_lograte_take(l, "a", 5001, &held));
	for (int i = 0; i < 5; i++)
		cr_assert_not(cep_lograte_take(l, "a", 5100, &held),
		    "over the burst");
	cr_assert(cep_lograte_take(l, "b", 5100, &held), "keys apart");
	cr_assert_eq(held, 0);
	cr_assert(cep_lograte_take(l, "a", 6000, &held), "the next window");
	cr_assert_eq(held, 5, "what was held back is told");
	cr_assert(cep_lograte_take(l, "a", 6001, &held));
	cr_assert_eq(held, 0);
	cep_lograte_free(l);
	cr_assert(cep_lograte_take(NULL, "a", 1, &held), "NULL logs all");
	cr_assert_neq(cep_lograte_new(&l, 0, 1, NULL), CEP_OK);
	cep_lograte_free(NULL);
}

Test(lograte, many_keys_forget_the_least_recent)
{
	cep_lograte *l = NULL;
	uint64_t held;
	char key[16];
	cr_assert_eq(cep_lograte_new(&l, 1000000, 1, NULL), CEP_OK);
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		cr_assert(cep_lograte_take(l, key, 10 + i, &held));
	}
	cr_assert_not(cep_lograte_take(l, "k999", 2000, &held), "remembered");
	cr_assert(cep_lograte_take(l, "k0", 2000, &held), "forgotten: logged");
	cep_lograte_free(l);
}

Test(lograte, peer_key)
{
	char k[64];
	cep_lograte_peer_key("10.0.0.5:41000", k, sizeof(k));
	cr_assert_str_eq(k, "10.0.0.5");
	cep_lograte_peer_key("[::1]:41000", k, sizeof(k));
	cr_assert_str_eq(k, "::1");
	cep_lograte_peer_key("ipc", k, sizeof(k));
	cr_assert_str_eq(k, "ipc");
	cep_lograte_peer_key("127.0.0.1:1", k, 4);
	cr_assert_str_eq(k, "127", "cut to the buffer");
}
