/*
 * frame.h - length + crc32c framing of protobuf records in append-only files.
 *
 * A frame is
 *   u32 length (little endian) | u32 crc32c of the payload | payload
 * used by the run journal (lib/model/journal.c) and the relay's spool
 * (relay/spool.c). Reading trusts nothing: the length is checked against
 * the caller's cap and the bytes the file really has before anything is
 * allocated, the checksum before the caller decodes anything.
 */
#ifndef CEP_FRAME_H
#define CEP_FRAME_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define CEP_FRAME_HDR 8u

uint32_t cep_frame_crc32c(const void *data, size_t len);

/* Header + m packed into one malloc'd buffer (*len = CEP_FRAME_HDR + n).
 * n is m's packed size, which the caller has already held against its own
 * limit (each file format answers an over-size record differently). */
int cep_frame_pack(const ProtobufCMessage *m, size_t n, unsigned char **buf,
    size_t *len, cep_err *err);

enum cep_frame_rv {
	CEP_FRAME_GOOD = 1, /* *payload and *len hold a checked payload */
	CEP_FRAME_END = 0,  /* off == file_size: a clean end */
	CEP_FRAME_BAD = -1, /* torn or corrupt; detail says why and where */
	CEP_FRAME_NOMEM = -2,
};

/* The frame at off in fd, a file of file_size bytes (pread: the file
 * position is not used). A payload over max is BAD. On GOOD the caller
 * frees *payload. detail names the offset, never the file: callers add it. */
int cep_frame_read(int fd, uint64_t off, uint64_t file_size, uint32_t max,
    unsigned char **payload, uint32_t *len, char *detail, size_t dlen);

/* write() until all of buf is written: 0, or an errno (EIO for a write
 * that made no progress). What was written before a failure stays: the
 * caller cuts it back. */
int cep_frame_write(int fd, const void *buf, size_t len);

#endif
