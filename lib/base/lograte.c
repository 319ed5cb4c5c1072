/*
 * lograte.c - at most burst lines per key per interval (lograte.h).
 *
 * Each key has a window: the first line opens it, burst lines pass in
 * it, the rest are counted; the first line after the window closes opens
 * the next one and carries the count. Slots are few and searched
 * linearly: the keys are the peers refused in the last interval.
 */
#define _GNU_SOURCE
#include "lograte.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 128
#define KEY_LEN 48

typedef struct slot {
	char key[KEY_LEN];
	int64_t since_ms; /* the window's start; 0 = a free slot */
	int lines;        /* logged in this window */
	uint64_t held;    /* held back since the key's last line */
} slot;

struct cep_lograte {
	pthread_mutex_t mu;
	int interval_ms, burst;
	slot slots[SLOTS];
};

int cep_lograte_new(cep_lograte **out, int interval_ms, int burst, cep_err *err)
{
	*out = NULL;
	if (interval_ms <= 0 || burst < 1)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "lograte: interval %d ms, burst %d", interval_ms, burst);
	cep_lograte *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "lograte: out of memory");
	pthread_mutex_init(&l->mu, NULL);
	l->interval_ms = interval_ms;
	l->burst = burst;
	*out = l;
	return CEP_OK;
}

/* key's slot: its own, else a free one, else the least recent (reset). */
static slot *slot_of(cep_lograte *l, const char *key)
{
	slot *old = &l->slots[0];
	for (size_t i = 0; i < SLOTS; i++) {
		slot *s = &l->slots[i];
		if (s->since_ms != 0 && strncmp(s->key, key, KEY_LEN - 1) == 0)
			return s;
		if (s->since_ms < old->since_ms)
			old = s;
	}
	memset(old, 0, sizeof(*old));
	snprintf(old->key, sizeof(old->key), "%s", key);
	return old;
}

bool cep_lograte_take(cep_lograte *l, const char *key, int64_t now_ms,
    uint64_t *held)
{
	*held = 0;
	if (l == NULL)
		return true;
	pthread_mutex_lock(&l->mu);
	slot *s = slot_of(l, key != NULL ? key : "?");
	if (s->since_ms == 0 || now_ms - s->since_ms >= l->interval_ms) {
		s->since_ms = now_ms > 0 ? now_ms : 1;
		s->lines = 0;
	}
	bool ok = s->lines < l->burst;
	if (ok) {
		s->lines++;
		*held = s->held;
		s->held = 0;
	} else {
		s->held++;
	}
	pthread_mutex_unlock(&l->mu);
	return ok;
}

void cep_lograte_free(cep_lograte *l)
{
	if (l == NULL)
		return;
	pthread_mutex_destroy(&l->mu);
	free(l);
}

void cep_lograte_peer_key(const char *peer, char *key, size_t len)
{
	const char *start = peer, *end = NULL;
	if (len == 0)
		return;
	if (peer[0] == '[') {
		start = peer + 1;
		end = strchr(start, ']');
	} else if (strchr(peer, ':') == strrchr(peer, ':')) {
		end = strchr(peer, ':'); /* IPv4 with a port, or none */
	}
	size_t n = end != NULL ? (size_t)(end - start) : strlen(start);
	if (n >= len)
		n = len - 1;
	memcpy(key, start, n);
	key[n] = '\0';
}
