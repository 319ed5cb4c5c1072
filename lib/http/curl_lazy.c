/*
 * curl_lazy.c - libcurl loaded on first use, not at exec: the libcurl
 * functions lib/http calls, each forwarding to the real one, which is
 * found with dlopen("libcurl.so.4") the first time any of them is called.
 *
 * Why: Debian's libcurl brings about 30 libraries (OpenSSL, GnuTLS through
 * librtmp and libldap, Kerberos, p11-kit, libssh2...) whose loading and
 * constructors cost a process about 6 MiB of resident memory before its
 * first request. A runner whose experiment has no http or Kubernetes step
 * never makes one (issue 12: runner RSS); the delegate and cepctl load it
 * when they first talk to a cluster.
 *
 * When libcurl cannot be loaded, every call fails the way libcurl fails
 * without memory (NULL, CURLE_FAILED_INIT) and curl_easy_strerror says
 * why: cep_http_global_init, the first call of every client, reports it.
 * Only this file calls dlopen; the rest of lib/http is written against
 * <curl/curl.h> as usual. The executable does not export these names, so
 * libcurl's own internal calls never come back here.
 */
#define _GNU_SOURCE
#define CURL_DISABLE_TYPECHECK /* the real prototypes, not the macros */
#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

#define CURL_SONAME "libcurl.so.4"

static struct {
	void *lib;
	CURLcode (*global_init)(long);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
	CURLcode (*easy_perform)(CURL *);
	void (*easy_cleanup)(CURL *);
	CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
	void (*easy_reset)(CURL *);
	const char *(*easy_strerror)(CURLcode);
	void (*free)(void *);
	CURLM *(*multi_init)(void);
	CURLMcode (*multi_add_handle)(CURLM *, CURL *);
	CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
	CURLMcode (*multi_perform)(CURLM *, int *);
	CURLMcode (*multi_poll)(CURLM *, struct curl_waitfd[], unsigned int,
	    int, int *);
	CURLMsg *(*multi_info_read)(CURLM *, int *);
	CURLMcode (*multi_cleanup)(CURLM *);
	CURLSH *(*share_init)(void);
	CURLSHcode (*share_setopt)(CURLSH *, CURLSHoption, ...);
	CURLSHcode (*share_cleanup)(CURLSH *);
	struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
	void (*slist_free_all)(struct curl_slist *);
	CURLU *(*url)(void);
	void (*url_cleanup)(CURLU *);
	CURLUcode (*url_get)(CURLU *, CURLUPart, char **, unsigned int);
	CURLUcode (*url_set)(CURLU *, CURLUPart, const char *, unsigned int);
} F;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char load_error[300] = "libcurl not loaded";

static const struct sym {
	const char *name;
	void **slot;
} syms[] = {
    {"curl_global_init", (void **)&F.global_init},
    {"curl_easy_init", (void **)&F.easy_init},
    {"curl_easy_setopt", (void **)&F.easy_setopt},
    {"curl_easy_perform", (void **)&F.easy_perform},
    {"curl_easy_cleanup", (void **)&F.easy_cleanup},
    {"curl_easy_getinfo", (void **)&F.easy_getinfo},
    {"curl_easy_reset", (void **)&F.easy_reset},
    {"curl_easy_strerror", (void **)&F.easy_strerror},
    {"curl_free", (void **)&F.free},
    {"curl_multi_init", (void **)&F.multi_init},
    {"curl_multi_add_handle", (void **)&F.multi_add_handle},
    {"curl_multi_remove_handle", (void **)&F.multi_remove_handle},
    {"curl_multi_perform", (void **)&F.multi_perform},
    {"curl_multi_poll", (void **)&F.multi_poll},
    {"curl_multi_info_read", (void **)&F.multi_info_read},
    {"curl_multi_cleanup", (void **)&F.multi_cleanup},
    {"curl_share_init", (void **)&F.share_init},
    {"curl_share_setopt", (void **)&F.share_setopt},
    {"curl_share_cleanup", (void **)&F.share_cleanup},
    {"curl_slist_append", (void **)&F.slist_append},
    {"curl_slist_free_all", (void **)&F.slist_free_all},
    {"curl_url", (void **)&F.url},
    {"curl_url_cleanup", (void **)&F.url_cleanup},
    {"curl_url_get", (void **)&F.url_get},
    {"curl_url_set", (void **)&F.url_set},
};

static void load(void)
{
	void *lib = dlopen(CURL_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) {
		snprintf(load_error, sizeof(load_error),
		    "libcurl cannot be loaded: %s", dlerror());
		return;
	}
	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++)
		if ((*syms[i].slot = dlsym(lib, syms[i].name)) == NULL) {
			snprintf(load_error, sizeof(load_error),
			    CURL_SONAME " has no %s", syms[i].name);
			dlclose(lib);
			return;
		}
	F.lib = lib;
}

static int ready(void)
{
	pthread_once(&once, load);
	return F.lib != NULL;
}

CURLcode curl_global_init(long flags)
{
	return ready() ? F.global_init(flags) : CURLE_FAILED_INIT;
}

CURL *curl_easy_init(void)
{
	return ready() ? F.easy_init() : NULL;
}

/* The argument's type follows from the option's number, as libcurl
 * reads it (CURLOPTTYPE_*). */
CURLcode curl_easy_setopt(CURL *h, CURLoption o, ...)
{
	if (!ready())
		return CURLE_FAILED_INIT;
	va_list ap;
	va_start(ap, o);
	CURLcode rc;
	if (o < CURLOPTTYPE_OBJECTPOINT)
		rc = F.easy_setopt(h, o, va_arg(ap, long));
	else if (o >= CURLOPTTYPE_OFF_T && o < CURLOPTTYPE_BLOB)
		rc = F.easy_setopt(h, o, va_arg(ap, curl_off_t));
	else /* object, function or blob pointer */
		rc = F.easy_setopt(h, o, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

CURLcode curl_easy_perform(CURL *h)
{
	return ready() ? F.easy_perform(h) : CURLE_FAILED_INIT;
}

void curl_easy_cleanup(CURL *h)
{
	if (ready())
		F.easy_cleanup(h);
}

/* Every CURLINFO takes a pointer to where the answer goes. */
CURLcode curl_easy_getinfo(CURL *h, CURLINFO info, ...)
{
	if (!ready())
		return CURLE_FAILED_INIT;
	va_list ap;
	va_start(ap, info);
	CURLcode rc = F.easy_getinfo(h, info, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

void curl_easy_reset(CURL *h)
{
	if (ready())
		F.easy_reset(h);
}

const char *curl_easy_strerror(CURLcode code)
{
	return ready() ? F.easy_strerror(code) : load_error;
}

void curl_free(void *p)
{
	if (ready())
		F.free(p);
}

CURLM *curl_multi_init(void)
{
	return ready() ? F.multi_init() : NULL;
}

CURLMcode curl_multi_add_handle(CURLM *m, CURL *h)
{
	return ready() ? F.multi_add_handle(m, h) : CURLM_INTERNAL_ERROR;
}

CURLMcode curl_multi_remove_handle(CURLM *m, CURL *h)
{
	return ready() ? F.multi_remove_handle(m, h) : CURLM_INTERNAL_ERROR;
}

CURLMcode curl_multi_perform(CURLM *m, int *running)
{
	return ready() ? F.multi_perform(m, running) : CURLM_INTERNAL_ERROR;
}

CURLMcode curl_multi_poll(CURLM *m, struct curl_waitfd extra[], unsigned int n,
    int timeout_ms, int *ret)
{
	return ready() ? F.multi_poll(m, extra, n, timeout_ms, ret) :
	                 CURLM_INTERNAL_ERROR;
}

CURLMsg *curl_multi_info_read(CURLM *m, int *left)
{
	return ready() ? F.multi_info_read(m, left) : NULL;
}

CURLMcode curl_multi_cleanup(CURLM *m)
{
	return ready() ? F.multi_cleanup(m) : CURLM_INTERNAL_ERROR;
}

CURLSH *curl_share_init(void)
{
	return ready() ? F.share_init() : NULL;
}

/* CURLSHOPT_SHARE and _UNSHARE take an int (a curl_lock_data), the
 * others a pointer. */
CURLSHcode curl_share_setopt(CURLSH *s, CURLSHoption o, ...)
{
	if (!ready())
		return CURLSHE_NOT_BUILT_IN;
	va_list ap;
	va_start(ap, o);
	CURLSHcode rc;
	if (o == CURLSHOPT_SHARE || o == CURLSHOPT_UNSHARE)
		rc = F.share_setopt(s, o, va_arg(ap, int));
	else
		rc = F.share_setopt(s, o, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

CURLSHcode curl_share_cleanup(CURLSH *s)
{
	return ready() ? F.share_cleanup(s) : CURLSHE_INVALID;
}

struct curl_slist *curl_slist_append(struct curl_slist *l, const char *s)
{
	return ready() ? F.slist_append(l, s) : NULL;
}

void curl_slist_free_all(struct curl_slist *l)
{
	if (ready())
		F.slist_free_all(l);
}

CURLU *curl_url(void)
{
	return ready() ? F.url() : NULL;
}

void curl_url_cleanup(CURLU *u)
{
	if (ready())
		F.url_cleanup(u);
}

CURLUcode curl_url_get(CURLU *u, CURLUPart what, char **part,
    unsigned int flags)
{
	return ready() ? F.url_get(u, what, part, flags) : CURLUE_OUT_OF_MEMORY;
}

CURLUcode curl_url_set(CURLU *u, CURLUPart what, const char *part,
    unsigned int flags)
{
	return ready() ? F.url_set(u, what, part, flags) : CURLUE_OUT_OF_MEMORY;
}
