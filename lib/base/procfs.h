/*
 * procfs.h - what /proc/<pid>/stat says about a process: its start time,
 * command name, parent and state. (Processes this tree starts: lib/proc.)
 */
#ifndef CEP_PROCFS_H
#define CEP_PROCFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* /proc/<pid>/stat field 22: start time in clock ticks, 0 if gone.
 * (pid, start) names a process without the risk of pid reuse. */
int64_t cep_procfs_start_time(int pid);
/* Command name (/proc/<pid>/stat "(comm)", which may hold spaces and ')')
 * and parent pid; either may be NULL. false if the process is gone. */
bool cep_procfs_info(int pid, char *comm, size_t clen, int *ppid);
/* /proc/<pid>/stat state letter ('R', 'S', 'Z', ...), 0 if gone. */
char cep_procfs_state(int pid);

#endif
