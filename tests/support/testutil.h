/* testutil.h - what many tests need: temp dirs, paths of built binaries. */
#ifndef CEP_TESTUTIL_H
#define CEP_TESTUTIL_H

#include <stddef.h>

/* A fresh directory under $TMPDIR (or /tmp), removed by cep_test_rmdir. */
char *cep_test_tmpdir(const char *tag);
void cep_test_rmdir(char *dir); /* removes and frees */
/* $CEP_BIN_DIR/name, or "./name". Static buffer per call site not needed:
 * returns a malloc'd string. */
char *cep_test_bin(const char *name);
/* A free TCP port on 127.0.0.1 (bind to 0, read, close). */
int cep_test_free_port(void);
/* A fresh temp dir (cep_test_tmpdir) with a tmpfs of `bytes` mounted on
 * its subdirectory "state", in a mount namespace of this process's own
 * (Criterion runs each test in a process of its own), so nothing else
 * sees it. Returns that mount point (malloc'd), or NULL with errno (EPERM:
 * not root). cep_test_tmpfs_free unmounts and removes it all. */
char *cep_test_tmpfs(const char *tag, size_t bytes);
void cep_test_tmpfs_free(char *mnt);
/* Writes path (created 0600) until its filesystem is full: the bytes
 * written, or -1 with errno if it could not be created. */
long long cep_test_fill(const char *path);
/* Counts processes whose /proc/<pid>/comm equals comm. */
int cep_test_count_procs(const char *comm);

#endif
