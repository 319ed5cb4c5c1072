/*
 * files.h - whole-file reads, atomic writes, mkdir -p, rm -r and bounded
 * path formatting. (Secret files, with their mode policy: secret.h.)
 */
#ifndef CEP_FILES_H
#define CEP_FILES_H

#include <stddef.h>

#include "err.h"

/* mkdir -p with mode for every created component. */
int cep_files_mkdirs(const char *path, unsigned mode, cep_err *err);
/* Reads a whole file, refusing files larger than max. Adds a NUL after the
 * data (not counted in *len). Caller frees. */
int cep_files_read(const char *path, size_t max, char **data, size_t *len,
    cep_err *err);
/* Writes atomically (tmp + fsync + rename + fsync dir) with mode. */
int cep_files_write(const char *path, const void *data, size_t len,
    unsigned mode, cep_err *err);
/* fsync of a directory, so that a rename or create in it is durable;
 * -1 with errno on failure. */
int cep_files_fsync_dir(const char *dir);
/* snprintf that reports truncation as an error instead of hiding it. */
int cep_files_path(char *buf, size_t len, cep_err *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Removes a directory tree (files and dirs only; symlinks unlinked, not followed). */
int cep_files_rmtree(const char *path, cep_err *err);

#endif
