/*
 * grpc_side.h - the gRPC side of bench_grpc: bus_side.h's two calls (Echo,
 * Push) as a gRPC C++ service over TLS with client certificates, a server
 * and a connection as a caller holds one. Test code (tests/bench/grpc/).
 */
#ifndef BENCH_GRPC_SIDE_H
#define BENCH_GRPC_SIDE_H

#include <memory>
#include <string>

/* PEM text: the test CA, this end's certificate and key. */
struct GsidePem {
	std::string ca, cert, key;
};

/* A synchronous gRPC server (the usual C++ way: a thread per call in
 * flight from gRPC's pool) on 127.0.0.1, mutual TLS. */
struct GsideServer {
	virtual ~GsideServer() = default;
	virtual int port() const = 0;
	static std::unique_ptr<GsideServer> start(const GsidePem &pem,
	    std::string *err);
};

/* One channel with its own HTTP/2 connection (no subchannel shared with
 * other channels), target name "localhost". Calls are blocking, 5 s
 * deadline; false and *err on failure. */
struct GsideConn {
	virtual ~GsideConn() = default;
	virtual bool echo(const std::string &payload, std::string *err) = 0;
	/* the next BBUS_BATCH events; checks the ack; *bytes request size */
	virtual bool push(size_t *bytes, std::string *err) = 0;
	static std::unique_ptr<GsideConn> open(int port, const GsidePem &pem);
};

/* "1.51.1": the gRPC library linked */
std::string gside_version();

#endif
