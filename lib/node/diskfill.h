/*
 * diskfill.h - undoing a `disk-fill` fault: removing the fill file, from
 * the runner (revert) or from the delegate (the runner is gone).
 *
 * The fault is anchored to the directory that holds the fill file,
 * identified by (dev, inode) - not to the pid used to reach it. The undo
 * JSON (recorded before the file exists):
 *   {"path": "/proc/PID/root/data" | "/data",  how the runner reached it
 *    "host_path": "/data",      only if that directory is the host's too
 *    "ns_path": "/data",        the path inside the target's mount ns
 *    "mntns": 4026531841,       inode of that mount namespace
 *    "dev": 2049, "ino_dir": 1234, "name": ".cep-fill-<run-id>-<n>"}
 * The undo looks for the directory at path, host_path, and
 * /proc/P/root/<ns_path> of every process P still in mntns; where (dev,
 * ino_dir) match, it unlinks name and checks it is gone. When no such
 * directory is reachable and no reachable mount table lists dev any more,
 * the filesystem is gone and so is the file. Limits: docs/faults-host.md.
 */
#ifndef CEP_DISKFILL_H
#define CEP_DISKFILL_H

#include <stddef.h>

#include "err.h"

#define CEP_DISKFILL_PREFIX ".cep-fill-"

/* The undo function of mechanism "disk-fill" (lib/undo/undo.c). Idempotent:
 * OK when the file is absent or its filesystem is gone. Only names
 * ".cep-fill-<run_id>-<digits>" are ever removed, whatever the JSON says
 * (the JSON comes from a runner: not trusted with arbitrary unlinks). */
int cep_diskfill_undo(const char *run_id, const char *undo_json, cep_err *err);

/* True if name is ".cep-fill-<run_id>-<digits>". */
int cep_diskfill_name_ok(const char *run_id, const char *name);

#endif
