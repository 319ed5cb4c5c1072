/* util.c - random bytes from the kernel. */
#define _GNU_SOURCE
#include "util.h"

#include <errno.h>
#include <stdint.h>
#include <sys/random.h>

int cep_util_random(void *buf, size_t len, cep_err *err)
{
	uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return cep_err_errno(err, errno, "getrandom");
		}
		p += n;
		len -= (size_t)n;
	}
	return CEP_OK;
}
