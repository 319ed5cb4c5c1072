/*
 * grpc_side.cc - the gRPC side of bench_grpc (grpc_side.h): the service,
 * the server and the client connection, with the messages of cep.proto.
 */
#include "grpc_side.h"

#include <chrono>

#include <grpcpp/grpcpp.h>

#include "bench.grpc.pb.h"
#include "bus_side.h"

namespace {

constexpr int call_ms = 5000;
constexpr size_t echo_reply_max = 16; /* as bus_side.c's Echo */

class Service final : public cep::v1::Bench::Service {
	grpc::Status Echo(grpc::ServerContext *,
	    const cep::v1::ChallengeRequest *rq,
	    cep::v1::ChallengeReply *rep) override
	{
		rep->set_nonce(rq->run_id().substr(0, echo_reply_max));
		return grpc::Status::OK;
	}
	grpc::Status Push(grpc::ServerContext *, const cep::v1::EventBatch *b,
	    cep::v1::EventAck *ack) override
	{
		int n = b->events_size();
		if (n > 0)
			ack->set_acked_seq(b->events(n - 1).seq());
		return grpc::Status::OK;
	}
};

class Server final : public GsideServer {
public:
	Service svc;
	std::unique_ptr<grpc::Server> srv;
	int port_ = 0;
	~Server() override
	{
		if (srv)
			srv->Shutdown(std::chrono::system_clock::now() +
			    std::chrono::seconds(1));
	}
	int port() const override { return port_; }
};

int64_t unix_ms()
{
	return std::chrono::duration_cast<std::chrono::milliseconds>(
	    std::chrono::system_clock::now().time_since_epoch())
	    .count();
}

class Conn final : public GsideConn {
public:
	std::unique_ptr<cep::v1::Bench::Stub> stub;
	cep::v1::EventBatch batch;
	uint64_t seq = 0;

	Conn()
	{
		batch.set_run_id(BBUS_RUN_ID);
		for (int i = 0; i < BBUS_BATCH; i++) {
			cep::v1::Event *e = batch.add_events();
			e->set_run_id(BBUS_RUN_ID);
			e->set_type(cep::v1::EVENT_LOG);
			e->set_text(BBUS_EVENT_TEXT);
		}
	}
	static void deadline(grpc::ClientContext *ctx)
	{
		ctx->set_deadline(std::chrono::system_clock::now() +
		    std::chrono::milliseconds(call_ms));
	}
	static bool failed(const grpc::Status &st, std::string *err)
	{
		if (st.ok())
			return false;
		*err = "gRPC status " + std::to_string(st.error_code()) + ": " +
		    st.error_message();
		return true;
	}
	bool echo(const std::string &payload, std::string *err) override
	{
		grpc::ClientContext ctx;
		deadline(&ctx);
		cep::v1::ChallengeRequest rq;
		cep::v1::ChallengeReply rep;
		rq.set_run_id(payload);
		return !failed(stub->Echo(&ctx, rq, &rep), err);
	}
	bool push(size_t *bytes, std::string *err) override
	{
		for (cep::v1::Event &e : *batch.mutable_events()) {
			e.set_seq(++seq);
			e.set_time_ms(unix_ms());
		}
		grpc::ClientContext ctx;
		deadline(&ctx);
		cep::v1::EventAck ack;
		if (failed(stub->Push(&ctx, batch, &ack), err))
			return false;
		*bytes = batch.ByteSizeLong();
		if (ack.acked_seq() == seq)
			return true;
		*err = "Push: acked " + std::to_string(ack.acked_seq()) +
		    ", sent " + std::to_string(seq);
		return false;
	}
};

} // namespace

std::unique_ptr<GsideServer> GsideServer::start(const GsidePem &pem,
    std::string *err)
{
	grpc::SslServerCredentialsOptions o(
	    GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
	o.pem_root_certs = pem.ca;
	o.pem_key_cert_pairs.push_back({pem.key, pem.cert});
	auto s = std::make_unique<Server>();
	grpc::ServerBuilder b;
	b.AddListeningPort("127.0.0.1:0", grpc::SslServerCredentials(o),
	    &s->port_);
	b.RegisterService(&s->svc);
	s->srv = b.BuildAndStart();
	if (!s->srv || s->port_ == 0) {
		*err = "gRPC server did not start on 127.0.0.1:0";
		return nullptr;
	}
	return s;
}

std::unique_ptr<GsideConn> GsideConn::open(int port, const GsidePem &pem)
{
	grpc::SslCredentialsOptions o;
	o.pem_root_certs = pem.ca;
	o.pem_private_key = pem.key;
	o.pem_cert_chain = pem.cert;
	grpc::ChannelArguments args;
	args.SetSslTargetNameOverride("localhost");
	/* a connection of its own, as each runner has */
	args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
	auto c = std::make_unique<Conn>();
	c->stub = cep::v1::Bench::NewStub(grpc::CreateCustomChannel(
	    "127.0.0.1:" + std::to_string(port), grpc::SslCredentials(o),
	    args));
	return c;
}

std::string gside_version()
{
	return grpc::Version();
}
