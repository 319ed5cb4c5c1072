/*
 * bench_grpc.cc - cep's bus and gRPC side by side: bench_rpc's two calls
 * (tests/bench/bus_side.h) over cep's bus (nng + mbedTLS + protobuf-c,
 * lib/rpc) and over gRPC C++ (HTTP/2 + TLS), in one run, same machine,
 * same payloads, same callers. Both with mutual TLS and ECDSA P-256
 * certificates of one test CA (lib/pki). Prints figures and the ratio
 * cep/gRPC; never fails on speed (only when a call fails).
 *
 *   bench_grpc [-d ms] [-k idle] [-H handshakes] [-c callers] [--small]
 *
 * Each server runs in a process of its own (this program, --serve), so its
 * RSS and CPU are its own; the callers run in this process, one connection
 * each (as runners do), 1 then c (64) of them, for -d ms per figure:
 *   Echo: 100-byte request, 16-byte reply: p50/p99 and calls/s;
 *   Push: 64 events of ~87 bytes acked with the last seq: p50/p99 per
 *         batch and events/s;
 * and the server's CPU per call and threads. Idle memory: the server's
 * RSS with k connected clients that made one call (a process of their
 * own, --idle) minus without, per connection; the clients' RSS likewise.
 * Handshake: H new connections, each a TLS handshake and a first Echo
 * then closed: wall time p50, and CPU per connection of the server and of
 * this process. cep and gRPC take turns
 * figure by figure, so a change of the machine's load hits both alike.
 */
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bus_side.h"
#include "grpc_side.h"
extern "C" {
#include "files.h"
#include "log.h"
#include "relay_app.h"
#include "rpc.h"
}

extern char **environ;

namespace {

/* ChallengeRequest{run_id: 98 bytes} packs to 100 bytes on both sides */
const std::string echo_payload(98, 'p');

struct Opts {
	int ms = 2000, idle = 200, handshakes = 100, callers = 64;
};

/* ------------------------------------------------------------ processes */

/* A child running this program with args: its stdin (closed to end it)
 * and stdout (lines it reports) are pipes. */
class Child {
public:
	pid_t pid = -1;
	int in = -1, out = -1;

	bool start(const std::vector<std::string> &args)
	{
		int pin[2], pout[2];
		if (pipe2(pin, O_CLOEXEC) != 0)
			return false;
		if (pipe2(pout, O_CLOEXEC) != 0) {
			close(pin[0]);
			close(pin[1]);
			return false;
		}
		posix_spawn_file_actions_t fa;
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, pin[0], 0);
		posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
		std::vector<char *> argv;
		std::string self = "/proc/self/exe";
		argv.push_back(self.data());
		for (const std::string &a : args)
			argv.push_back(const_cast<char *>(a.c_str()));
		argv.push_back(nullptr);
		int rv = posix_spawn(&pid, "/proc/self/exe", &fa, nullptr,
		    argv.data(), environ);
		posix_spawn_file_actions_destroy(&fa);
		close(pin[0]);
		close(pout[1]);
		in = pin[1];
		out = pout[0];
		return rv == 0;
	}
	/* The next line it writes (without '\n'); "" at its end. */
	std::string line()
	{
		std::string s;
		char ch;
		while (read(out, &ch, 1) == 1 && ch != '\n')
			s += ch;
		return s;
	}
	/* Closes its stdin (its signal to stop) and waits for it. */
	void finish()
	{
		if (in >= 0)
			close(in);
		if (out >= 0)
			close(out);
		in = out = -1;
		if (pid > 0)
			waitpid(pid, nullptr, 0);
		pid = -1;
	}
	~Child() { finish(); }
};

/* Blocks until stdin ends: the driver closed it, or died. */
void wait_stdin_eof()
{
	char buf[64];
	while (read(0, buf, sizeof(buf)) > 0)
		;
}

long self_rss_kib()
{
	bproc p;
	return bproc_read(getpid(), &p) == 0 ? p.rss_kib : -1;
}

double self_cpu_s()
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ----------------------------------------------------------- the sides */

/* A caller's connection, connected and past its first call. */
class Conn {
public:
	virtual ~Conn() = default;
	virtual bool echo(std::string *err) = 0;
	virtual bool push(size_t *bytes, std::string *err) = 0;
};

class CepConn final : public Conn {
public:
	cep_rpc_client *c = nullptr;
	bbus_batch *b = bbus_batch_new();
	~CepConn() override
	{
		cep_rpc_client_free(c);
		bbus_batch_free(b);
	}
	static bool fail(int rv, const cep_err &e, std::string *err)
	{
		if (rv != CEP_OK)
			*err = e.msg;
		return rv == CEP_OK;
	}
	bool echo(std::string *err) override
	{
		cep_err e;
		return fail(bbus_echo(c, echo_payload.c_str(), &e), e, err);
	}
	bool push(size_t *bytes, std::string *err) override
	{
		cep_err e;
		return fail(bbus_push(c, b, bytes, &e), e, err);
	}
};

class GrpcConn final : public Conn {
public:
	std::unique_ptr<GsideConn> g;
	bool echo(std::string *err) override
	{
		return g->echo(echo_payload, err);
	}
	bool push(size_t *bytes, std::string *err) override
	{
		return g->push(bytes, err);
	}
};

std::string read_text(const std::string &path)
{
	std::ifstream f(path);
	std::stringstream s;
	s << f.rdbuf();
	return s.str();
}

GsidePem read_pem(const std::string &dir, const char *who)
{
	std::string p = dir + "/" + who;
	return {read_text(dir + "/ca.pem"), read_text(p + ".pem"),
	    read_text(p + ".key")};
}

/* One stack: which it is, its certificates (files in dir), its server
 * process. */
struct Side {
	std::string name, dir;
	GsidePem srv, cli;
	Child server;
	int port = 0;

	Side(std::string n, std::string d)
	    : name(std::move(n)), dir(std::move(d)), srv(read_pem(dir, "srv")),
	      cli(read_pem(dir, "cli"))
	{
	}
	bool is_cep() const { return name == "cep"; }
	/* A new connection and its first Echo (the handshake on both). */
	std::unique_ptr<Conn> connect(std::string *err) const
	{
		const GsidePem &p = cli;
		std::unique_ptr<Conn> c;
		if (is_cep()) {
			auto cc = std::make_unique<CepConn>();
			std::string url = "tls+tcp://127.0.0.1:" +
			    std::to_string(port);
			cep_rpc_tls t = {p.cert.c_str(), p.key.c_str(),
			    p.ca.c_str(), "localhost", false};
			cep_err e;
			if (cep_rpc_client_new(&cc->c, url.c_str(), &t, &e) !=
			    CEP_OK) {
				*err = e.msg;
				return nullptr;
			}
			c = std::move(cc);
		} else {
			auto gc = std::make_unique<GrpcConn>();
			gc->g = GsideConn::open(port, p);
			c = std::move(gc);
		}
		if (!c->echo(err))
			return nullptr;
		return c;
	}
	/* n connections, 16 handshakes at a time: *err the first failure */
	bool connect_all(int n, std::vector<std::unique_ptr<Conn>> *out,
	    std::string *err) const
	{
		out->clear();
		out->resize(n);
		std::vector<std::string> errs(n);
		std::vector<std::thread> th;
		for (int t = 0; t < std::min(n, 16); t++)
			th.emplace_back([&, t] {
				for (int i = t; i < n; i += 16)
					(*out)[i] = connect(&errs[i]);
			});
		for (std::thread &t : th)
			t.join();
		for (int i = 0; i < n; i++)
			if (!(*out)[i]) {
				*err = "connection " + std::to_string(i) +
				    ": " + errs[i];
				return false;
			}
		return true;
	}
	bool start(std::string *err)
	{
		if (!server.start({"--serve", name, dir})) {
			*err = name + ": cannot start its server";
			return false;
		}
		std::string l = server.line();
		if (l.rfind("port ", 0) != 0) {
			*err = name + " server: " + (l.empty() ? "exited" : l);
			return false;
		}
		port = std::stoi(l.substr(5));
		return true;
	}
	bproc stat() const
	{
		bproc p;
		if (bproc_read(server.pid, &p) != 0)
			memset(&p, 0, sizeof(p));
		return p;
	}
};

/* --serve NAME DIR: the server of one side until stdin ends. */
int serve_main(const std::string &name, const std::string &dir)
{
	Side s(name, dir);
	const GsidePem &p = s.srv;
	if (s.is_cep()) {
		cep_rpc_server *srv = nullptr;
		cep_rpc_tls t = {p.cert.c_str(), p.key.c_str(), p.ca.c_str(),
		    nullptr, false};
		cep_err e;
		if (bbus_server_new(&srv, &e) != CEP_OK ||
		    cep_rpc_server_listen(srv, "tls+tcp://127.0.0.1:0", &t,
		        &e) != CEP_OK) {
			printf("error %s\n", e.msg);
			return 1;
		}
		printf("port %d\n", cep_rpc_server_port(srv));
		fflush(stdout);
		wait_stdin_eof();
		cep_rpc_server_free(srv);
		return 0;
	}
	std::string err;
	std::unique_ptr<GsideServer> srv = GsideServer::start(p, &err);
	if (!srv) {
		printf("error %s\n", err.c_str());
		return 1;
	}
	printf("port %d\n", srv->port());
	fflush(stdout);
	wait_stdin_eof();
	return 0;
}

/* --idle NAME DIR PORT K: K connections of one side, each past its first
 * call, held until stdin ends; reports "ready RSS0 RSS1" (own KiB before
 * and after). */
int idle_main(const std::string &name, const std::string &dir, int port,
    int k)
{
	Side s(name, dir);
	s.port = port;
	long rss0 = self_rss_kib();
	std::vector<std::unique_ptr<Conn>> conns;
	std::string err;
	if (!s.connect_all(k, &conns, &err)) {
		printf("error %s\n", err.c_str());
		fflush(stdout);
		_exit(1);
	}
	printf("ready %ld %ld\n", rss0, self_rss_kib());
	fflush(stdout);
	wait_stdin_eof();
	_exit(0); /* the server sees k connections drop; no need to be polite */
}

/* -------------------------------------------------------------- figures */

struct Row {
	std::string what;
	double cep = 0, grpc = 0;
};

int64_t now_us()
{
	return bapp_now_us();
}

int64_t pct(std::vector<int64_t> &v, int p)
{
	if (v.empty())
		return 0;
	std::sort(v.begin(), v.end());
	return v[std::min(v.size() - 1, v.size() * (size_t)p / 100)];
}

struct Load {
	std::vector<int64_t> us;
	double calls_s = 0, srv_cpu_us = 0;
	long srv_threads = 0; /* at the end, connections still open */
	int fails = 0;
	std::string err;
};

/* callers connections calling Echo (or Push) for ms. */
Load run_load(const Side &s, bool push, int callers, int ms)
{
	Load r;
	std::vector<std::unique_ptr<Conn>> conns;
	if (!s.connect_all(callers, &conns, &r.err)) {
		r.fails = 1;
		return r;
	}
	std::vector<std::vector<int64_t>> us(callers);
	std::vector<int> fails(callers, 0);
	std::vector<std::string> errs(callers);
	bproc p0 = s.stat();
	int64_t t0 = now_us(), until = t0 + (int64_t)ms * 1000;
	std::vector<std::thread> th;
	for (int i = 0; i < callers; i++)
		th.emplace_back([&, i] {
			size_t bytes;
			while (now_us() < until) {
				int64_t a = now_us();
				Conn *c = conns[i].get();
				bool ok = push ? c->push(&bytes, &errs[i]) :
				                 c->echo(&errs[i]);
				us[i].push_back(now_us() - a);
				fails[i] += !ok;
			}
		});
	for (std::thread &t : th)
		t.join();
	double secs = (double)(now_us() - t0) / 1e6;
	bproc p1 = s.stat();
	for (int i = 0; i < callers; i++) {
		r.us.insert(r.us.end(), us[i].begin(), us[i].end());
		r.fails += fails[i];
		if (fails[i] && r.err.empty())
			r.err = errs[i];
	}
	r.calls_s = (double)r.us.size() / secs;
	r.srv_threads = p1.threads;
	if (!r.us.empty())
		r.srv_cpu_us =
		    (p1.cpu_s - p0.cpu_s) * 1e6 / (double)r.us.size();
	return r;
}

struct Handshakes {
	std::vector<int64_t> us;
	double srv_cpu_ms = 0, cli_cpu_ms = 0;
	std::string err;
};

/* n new connections, one after the other: TLS handshake, first Echo,
 * close. */
Handshakes run_handshakes(const Side &s, int n)
{
	Handshakes h;
	bproc p0 = s.stat();
	double c0 = self_cpu_s();
	for (int i = 0; i < n; i++) {
		int64_t a = now_us();
		std::unique_ptr<Conn> c = s.connect(&h.err);
		h.us.push_back(now_us() - a);
		if (!c)
			return h;
	}
	h.cli_cpu_ms = (self_cpu_s() - c0) * 1e3 / n;
	h.srv_cpu_ms = (s.stat().cpu_s - p0.cpu_s) * 1e3 / n;
	return h;
}

/* Server KiB per idle connection, client KiB per connection. */
bool run_idle(const Side &s, int k, double *srv_kib, double *cli_kib,
    std::string *err)
{
	/* one connection first: what the first one initialises is not a
	 * per-connection cost */
	if (!s.connect(err))
		return false;
	std::this_thread::sleep_for(std::chrono::milliseconds(300));
	long rss0 = s.stat().rss_kib;
	Child idle;
	if (!idle.start({"--idle", s.name, s.dir, std::to_string(s.port),
	        std::to_string(k)})) {
		*err = "cannot start the idle clients";
		return false;
	}
	std::string l = idle.line();
	long a = 0, b = 0;
	if (l.rfind("ready ", 0) != 0 ||
	    !(std::istringstream(l.substr(6)) >> a >> b)) {
		*err = s.name + " idle clients: " + (l.empty() ? "exited" : l);
		return false;
	}
	std::this_thread::sleep_for(std::chrono::milliseconds(300));
	long rss1 = s.stat().rss_kib;
	idle.finish();
	*srv_kib = (double)(rss1 - rss0) / k;
	*cli_kib = (double)(b - a) / k;
	return true;
}

bool failed(const std::string &side, const std::string &what, int fails,
    const std::string &err)
{
	if (fails == 0 && err.empty())
		return false;
	fprintf(stderr, "bench_grpc: %s %s: %d failed calls: %s\n",
	    side.c_str(), what.c_str(), fails, err.c_str());
	return true;
}

/* The figures: a row each, cep's and gRPC's value. */
class Table {
public:
	std::vector<Row> rows;
	void add(const std::string &what, int side, double v)
	{
		auto r = std::find_if(rows.begin(), rows.end(),
		    [&what](const Row &x) { return x.what == what; });
		if (r == rows.end())
			r = rows.insert(rows.end(), Row{what});
		(side == 0 ? r->cep : r->grpc) = v;
	}
};

bool measure_load(Side *sides, bool push, int callers, int ms, Table *t)
{
	std::string c = (push ? "Push 64 ev, " : "Echo 100 B, ") +
	    std::to_string(callers) + (callers > 1 ? " callers" : " caller");
	for (int i = 0; i < 2; i++) {
		Load l = run_load(sides[i], push, callers, ms);
		if (failed(sides[i].name, c, l.fails, l.err))
			return false;
		t->add(c + ": p50 us", i, (double)pct(l.us, 50));
		t->add(c + ": p99 us", i, (double)pct(l.us, 99));
		t->add(c + (push ? ": events/s" : ": calls/s"), i,
		    push ? l.calls_s * BBUS_BATCH : l.calls_s);
		t->add(c + ": server CPU us/call", i, l.srv_cpu_us);
		t->add(c + ": server threads", i, (double)l.srv_threads);
	}
	return true;
}

/* Every figure, cep then gRPC each time; false if a call failed. */
bool measure(Side *sides, const Opts &o, Table *t)
{
	std::string err;
	for (int i = 0; i < 2; i++) {
		double srv, cli;
		if (!run_idle(sides[i], o.idle, &srv, &cli, &err))
			return !failed(sides[i].name, "idle", 1, err);
		t->add("idle connection: server KiB each (k=" +
		        std::to_string(o.idle) + ")",
		    i, srv);
		t->add("idle connection: client KiB each", i, cli);
	}
	for (int i = 0; i < 2; i++) {
		Handshakes h = run_handshakes(sides[i], o.handshakes);
		if (failed(sides[i].name, "handshake", !h.err.empty(), h.err))
			return false;
		t->add("new connection + 1st call: wall p50 ms", i,
		    (double)pct(h.us, 50) / 1e3);
		t->add("new connection: server CPU ms", i, h.srv_cpu_ms);
		t->add("new connection: client CPU ms", i, h.cli_cpu_ms);
	}
	for (bool push : {false, true})
		for (int callers : {1, o.callers})
			if (!measure_load(sides, push, callers, o.ms, t))
				return false;
	return true;
}

void print_table(const std::vector<Row> &rows)
{
	printf("\n%-46s %12s %12s %9s\n", "figure", "cep", "gRPC",
	    "cep/gRPC");
	for (const Row &r : rows) {
		char ratio[32] = "-";
		if (r.grpc != 0)
			snprintf(ratio, sizeof(ratio), "%.2f", r.cep / r.grpc);
		printf("%-46s %12.*f %12.*f %9s\n", r.what.c_str(),
		    r.cep < 100 ? 2 : 0, r.cep, r.grpc < 100 ? 2 : 0, r.grpc,
		    ratio);
	}
	printf("(latency, KiB and CPU: lower is better, so a ratio < 1 "
	       "favours cep; calls/s and events/s: higher is better)\n");
}

std::string loadavg()
{
	std::string l = read_text("/proc/loadavg");
	size_t n = 0;
	for (int i = 0; i < 3 && n != std::string::npos; i++)
		n = l.find(' ', n + 1);
	return l.substr(0, n);
}

/* Certificates of one test CA into dir (mode 0600), for both sides. */
bool write_pems(const std::string &dir)
{
	bbus_tls t;
	cep_err e;
	bool ok = bbus_tls_make((dir + "/ca").c_str(), &t, &e) == CEP_OK;
	const std::pair<const char *, const char *> files[] = {
	    {"ca.pem", t.ca}, {"srv.pem", t.srv_cert}, {"srv.key", t.srv_key},
	    {"cli.pem", t.cli_cert}, {"cli.key", t.cli_key}};
	for (const auto &f : files)
		ok = ok &&
		    cep_files_write((dir + "/" + f.first).c_str(), f.second,
		        strlen(f.second), 0600, &e) == CEP_OK;
	if (!ok)
		fprintf(stderr, "bench_grpc: certificates: %s\n", e.msg);
	bbus_tls_free(&t);
	return ok;
}

int driver_main(const Opts &o)
{
	char dir[] = "/tmp/cep-bench-grpc-XXXXXX";
	if (mkdtemp(dir) == nullptr || !write_pems(dir))
		return 1;
	printf("bench_grpc: cep (nng + mbedTLS + protobuf-c) and gRPC C++ "
	       "%s, mutual TLS, ECDSA P-256; %d ms per figure, 1 and %d "
	       "callers, k=%d idle, %d handshakes\n",
	    gside_version().c_str(), o.ms, o.callers, o.idle, o.handshakes);
	printf("load average at start: %s\n", loadavg().c_str());
	fflush(stdout);
	Side sides[2] = {Side("cep", dir), Side("grpc", dir)};
	std::string err;
	bool ok = sides[0].start(&err) && sides[1].start(&err);
	Table t;
	if (!ok)
		fprintf(stderr, "bench_grpc: %s\n", err.c_str());
	else
		ok = measure(sides, o, &t);
	printf("load average at the end: %s\n", loadavg().c_str());
	if (ok)
		print_table(t.rows);
	sides[0].server.finish();
	sides[1].server.finish();
	cep_files_rmtree(dir, nullptr);
	return ok ? 0 : 1;
}

} // namespace

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	cep_log_init("bench");
	cep_log_set_level(CEP_LOG_WARN);
	if (argc == 4 && strcmp(argv[1], "--serve") == 0)
		return serve_main(argv[2], argv[3]);
	if (argc == 6 && strcmp(argv[1], "--idle") == 0)
		return idle_main(argv[2], argv[3], std::stoi(argv[4]),
		    std::stoi(argv[5]));
	Opts o;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--small") == 0)
			o = Opts{200, 8, 5, 16};
	o.ms = bbus_arg_int(argc, argv, "-d", o.ms);
	o.idle = bbus_arg_int(argc, argv, "-k", o.idle);
	o.handshakes = bbus_arg_int(argc, argv, "-H", o.handshakes);
	o.callers = bbus_arg_int(argc, argv, "-c", o.callers);
	return driver_main(o);
}
