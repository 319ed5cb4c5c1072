/*
 * util.h - random bytes from the kernel. The other small shared helpers
 * live by concern: clock.h (clocks, durations), files.h (files, paths),
 * procfs.h (/proc/<pid>/stat), run_id.h (the run id type). Nothing here
 * knows about runs or the network.
 */
#ifndef CEP_UTIL_H
#define CEP_UTIL_H

#include <stddef.h>

#include "err.h"

/* Random bytes from the kernel. */
int cep_util_random(void *buf, size_t len, cep_err *err);

#endif
