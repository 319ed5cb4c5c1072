/*
 * frame.c - length + crc32c frames: crc32c, packing, checked reads.
 *
 * Shared by the journal and the spool so that both formats stay one
 * format and a fix to the checks lands in both.
 */
#define _GNU_SOURCE
#include "frame.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* ---- crc32c (Castagnoli, reflected 0x82F63B78) --------------------------- */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc_table[i] = c;
	}
}

uint32_t cep_frame_crc32c(const void *data, size_t len)
{
	pthread_once(&crc_once, crc_init);
	const unsigned char *p = data;
	uint32_t c = 0xFFFFFFFFu;
	while (len-- > 0)
		c = crc_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}

static void put_le32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static uint32_t get_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

int cep_frame_pack(const ProtobufCMessage *m, size_t n, unsigned char **buf,
    size_t *len, cep_err *err)
{
	if (n > UINT32_MAX)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "a record of %zu bytes cannot be framed", n);
	unsigned char *b = malloc(CEP_FRAME_HDR + n);
	if (b == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	size_t packed = protobuf_c_message_pack(m, b + CEP_FRAME_HDR);
	if (packed != n) {
		free(b);
		return cep_err_set(err, CEP_INTERNAL,
		    "record packed to %zu bytes, expected %zu", packed, n);
	}
	put_le32(b, (uint32_t)n);
	put_le32(b + 4, cep_frame_crc32c(b + CEP_FRAME_HDR, n));
	*buf = b;
	*len = CEP_FRAME_HDR + n;
	return CEP_OK;
}

/* pread() until n bytes or end of file; returns bytes read or -1. */
static ssize_t pread_full(int fd, void *buf, size_t n, uint64_t off)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = pread(fd, (char *)buf + got, n - got,
		    (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

int cep_frame_read(int fd, uint64_t off, uint64_t file_size, uint32_t max,
    unsigned char **payload, uint32_t *len, char *detail, size_t dlen)
{
	unsigned char hdr[CEP_FRAME_HDR];
	*payload = NULL;
	*len = 0;
	if (off >= file_size)
		return CEP_FRAME_END;
	uint64_t left = file_size - off;
	if (left < CEP_FRAME_HDR ||
	    pread_full(fd, hdr, CEP_FRAME_HDR, off) != (ssize_t)CEP_FRAME_HDR) {
		snprintf(detail, dlen,
		    "record at offset %llu: header truncated (%llu of %u bytes)",
		    (unsigned long long)off, (unsigned long long)left,
		    CEP_FRAME_HDR);
		return CEP_FRAME_BAD;
	}
	uint32_t n = get_le32(hdr), crc = get_le32(hdr + 4);
	if (n > max) {
		snprintf(detail, dlen,
		    "record at offset %llu: length %u exceeds the %u-byte limit",
		    (unsigned long long)off, n, max);
		return CEP_FRAME_BAD;
	}
	if (n > left - CEP_FRAME_HDR) {
		snprintf(detail, dlen,
		    "record at offset %llu: truncated (needs "
		    "%u payload bytes, file has %llu)",
		    (unsigned long long)off, n,
		    (unsigned long long)(left - CEP_FRAME_HDR));
		return CEP_FRAME_BAD;
	}
	unsigned char *buf = malloc(n ? n : 1);
	if (buf == NULL)
		return CEP_FRAME_NOMEM;
	if (pread_full(fd, buf, n, off + CEP_FRAME_HDR) != (ssize_t)n) {
		free(buf);
		snprintf(detail, dlen, "record at offset %llu: short read",
		    (unsigned long long)off);
		return CEP_FRAME_BAD;
	}
	if (cep_frame_crc32c(buf, n) != crc) {
		free(buf);
		snprintf(detail, dlen,
		    "record at offset %llu: checksum mismatch",
		    (unsigned long long)off);
		return CEP_FRAME_BAD;
	}
	*payload = buf;
	*len = n;
	return CEP_FRAME_GOOD;
}

int cep_frame_write(int fd, const void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(fd, (const char *)buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? errno : EIO;
		done += (size_t)n;
	}
	return 0;
}
