/*
 * pipes.c - the pipe table: a small chained hash keyed by nng pipe id,
 * plus a ring of recently removed ids.
 *
 * The ring exists because a handler may run after its pipe's removal
 * callback (calls are queued to worker threads); without it such a call
 * would re-create an entry that nothing ever removes.
 */
#define _GNU_SOURCE
#include "pipes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 256
#define REMOVED_RING 1024

struct cep_pipes {
	cep_relay_pipe *bucket[BUCKETS];
	uint32_t removed[REMOVED_RING];
	size_t rm_head;
	uint32_t nbound;
};

int relay_pipes_new(cep_pipes **out, cep_err *err)
{
	*out = calloc(1, sizeof(**out));
	if (*out == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "pipe table: out of memory");
	return CEP_OK;
}

void relay_pipes_free(cep_pipes *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < BUCKETS; i++) {
		cep_relay_pipe *p = t->bucket[i];
		while (p != NULL) {
			cep_relay_pipe *next = p->next;
			explicit_bzero(p->nonce, sizeof(p->nonce));
			free(p);
			p = next;
		}
	}
	free(t);
}

cep_relay_pipe *relay_pipes_find(cep_pipes *t, uint32_t id)
{
	for (cep_relay_pipe *p = t->bucket[id % BUCKETS]; p != NULL;
	     p = p->next)
		if (p->id == id)
			return p;
	return NULL;
}

static bool was_removed(const cep_pipes *t, uint32_t id)
{
	for (size_t i = 0; i < REMOVED_RING; i++)
		if (t->removed[i] == id)
			return true;
	return false;
}

cep_relay_pipe *relay_pipes_get(cep_pipes *t, uint32_t id, bool verified,
    const char *peer)
{
	cep_relay_pipe *p = relay_pipes_find(t, id);
	if (p != NULL || id == 0 || was_removed(t, id))
		return p;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->id = id;
	p->verified = verified;
	snprintf(p->peer, sizeof(p->peer), "%s", peer != NULL ? peer : "?");
	p->next = t->bucket[id % BUCKETS];
	t->bucket[id % BUCKETS] = p;
	return p;
}

void relay_pipes_remove(cep_pipes *t, uint32_t id)
{
	if (id == 0)
		return;
	t->removed[t->rm_head] = id;
	t->rm_head = (t->rm_head + 1) % REMOVED_RING;
	for (cep_relay_pipe **pp = &t->bucket[id % BUCKETS]; *pp != NULL;
	     pp = &(*pp)->next) {
		cep_relay_pipe *p = *pp;
		if (p->id != id)
			continue;
		*pp = p->next;
		if (p->bound)
			t->nbound--;
		explicit_bzero(p->nonce, sizeof(p->nonce));
		free(p);
		return;
	}
}

void relay_pipes_bind(cep_pipes *t, cep_relay_pipe *p, const char *run_id,
    int64_t not_after_ms)
{
	if (!p->bound)
		t->nbound++;
	p->bound = true;
	cep_run_id_parse(&p->run_id, run_id);
	p->not_after_ms = not_after_ms;
	cep_run_id_clear(&p->revoked);
}

size_t relay_pipes_unbind_run(cep_pipes *t, const char *run_id)
{
	size_t n = 0;
	for (size_t i = 0; i < BUCKETS; i++) {
		for (cep_relay_pipe *p = t->bucket[i]; p != NULL; p = p->next) {
			if (!p->bound || strcmp(p->run_id.s, run_id) != 0)
				continue;
			p->bound = false;
			p->revoked = p->run_id;
			cep_run_id_clear(&p->run_id);
			t->nbound--;
			n++;
		}
	}
	return n;
}

uint32_t relay_pipes_bound(const cep_pipes *t)
{
	return t->nbound;
}
