/* fuzz_spool.c - arbitrary bytes as a spool segment: opening must cut at
 * the first bad record, peek must return exactly the records kept, and a
 * second open must find the same records and nothing torn. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "spool.h"
#include "files.h"

static char dir[] = "/tmp/cep-fuzz-spool-XXXXXX";
static char path[sizeof(dir) + 32];

static void cleanup(void)
{
	cep_files_rmtree(dir, NULL);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(path, sizeof(path), "%s/seg-0000000000000001", dir);
	atexit(cleanup);
	cep_log_set_level(CEP_LOG_ERROR); /* every cut would log a warning */
	return 0;
}

static void put_file(const uint8_t *data, size_t size)
{
	/* a clean directory: no cursor, no segments of an earlier input */
	cep_files_rmtree(dir, NULL);
	if (mkdir(dir, 0700) != 0)
		abort();
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		abort();
	size_t done = 0;
	while (done < size) {
		ssize_t n = write(fd, data + done, size - done);
		if (n <= 0)
			abort();
		done += (size_t)n;
	}
	close(fd);
}

/* Peeks everything; touches every decoded string so ASan sees bad decodes. */
static size_t peek_all(cep_spool *s)
{
	Cep__V1__EventBatch **v = NULL;
	size_t n = 0;
	uint64_t tok = 0;
	cep_err err;
	if (relay_spool_peek(s, SIZE_MAX, 0, &v, &n, &tok, &err) != 0)
		abort();
	for (size_t i = 0; i < n; i++) {
		if (v[i]->run_id != NULL)
			(void)strlen(v[i]->run_id);
		for (size_t k = 0; k < v[i]->n_events; k++)
			if (v[i]->events[k]->text != NULL)
				(void)strlen(v[i]->events[k]->text);
	}
	relay_spool_batches_free(v, n);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	put_file(data, size);
	cep_spool *s = NULL;
	cep_err err;
	if (relay_spool_open(dir, 1 << 30, &s, &err) != 0)
		abort();
	size_t recs = relay_spool_records(s);
	int64_t bytes = relay_spool_bytes(s);
	if (peek_all(s) != recs || bytes < 0 || (uint64_t)bytes > size ||
	    (recs == 0) != (bytes == 0))
		__builtin_trap();
	relay_spool_close(s);
	if (relay_spool_open(dir, 1 << 30, &s, &err) != 0)
		abort();
	if (relay_spool_records(s) != recs || relay_spool_bytes(s) != bytes)
		__builtin_trap();
	relay_spool_close(s);
	return 0;
}
