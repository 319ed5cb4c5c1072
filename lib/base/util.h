/*
 * util.h - random bytes from the kernel; and, for the many files that use
 * several of them, the small shared helpers split by concern: clock.h
 * (clocks, durations), files.h (files, paths), procfs.h (/proc/<pid>/stat)
 * and run_id.h (the run id type). Nothing here knows about runs or the
 * network.
 */
#ifndef CEP_UTIL_H
#define CEP_UTIL_H

#include <stddef.h>

#include "clock.h"
#include "err.h"
#include "files.h"
#include "procfs.h"
#include "run_id.h" /* the run id type: most users came here for it */

/* Random bytes from the kernel. */
int cep_util_random(void *buf, size_t len, cep_err *err);

#endif
