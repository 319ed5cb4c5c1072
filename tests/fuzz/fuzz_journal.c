/* fuzz_journal.c - arbitrary bytes as a journal file: replay must stop
 * cleanly at the first bad record, and opening must cut exactly there. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"
#include "files.h"

static char dir[] = "/tmp/cep-fuzz-journal-XXXXXX";
static char path[sizeof(dir) + 16];

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
	snprintf(path, sizeof(path), "%s/journal", dir);
	atexit(cleanup);
	cep_log_set_level(
	    CEP_LOG_ERROR); /* every cut tail would log a warning */
	return 0;
}

static int count(const Cep__V1__JournalRecord *rec, void *arg)
{
	/* touch the decoded record, so bad decodes show up under ASan */
	if (rec->text != NULL)
		(void)strlen(rec->text);
	(*(size_t *)arg)++;
	return 0;
}

static void put_file(const uint8_t *data, size_t size)
{
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	put_file(data, size);
	cep_journal_replay_info a, b;
	cep_err err;
	size_t seen = 0;
	if (cep_journal_replay(dir, count, &seen, &a, &err) != 0)
		abort();
	if (seen != a.records || a.valid_bytes > size ||
	    a.torn_tail != (a.valid_bytes != size))
		__builtin_trap();
	cep_journal *j = NULL;
	if (cep_journal_open(dir, &j, &err) != 0)
		abort();
	cep_journal_close(j);
	/* after the cut: the same records, nothing torn */
	if (cep_journal_replay(dir, NULL, NULL, &b, &err) != 0)
		abort();
	if (b.records != a.records || b.valid_bytes != a.valid_bytes ||
	    b.torn_tail)
		__builtin_trap();
	return 0;
}
