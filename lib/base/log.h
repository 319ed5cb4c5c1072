/*
 * log.h - structured logs.
 *
 * Under systemd (JOURNAL_STREAM set) a line goes to the journal with fields
 * CEP_COMPONENT, CEP_RUN_ID, CEP_CONNECTOR, PRIORITY (empty ones left out,
 * so `journalctl CEP_RUN_ID=r-1a2b` shows one run across relay, delegate
 * and runner); on a terminal or a pipe it is logfmt:
 *   ts=2026-11-25T13:55:11.123Z level=info comp=relay run=r-1a2b msg="..."
 * Every line about a run carries its run id; every line about a Kubernetes
 * connector its name (cep_log_conn). lib/ code logs only through here.
 * Never pass key material, tokens or kubeconfig contents.
 */
#ifndef CEP_LOG_H
#define CEP_LOG_H

enum cep_log_level { CEP_LOG_DEBUG, CEP_LOG_INFO, CEP_LOG_WARN, CEP_LOG_ERROR };

/* comp: "relay", "delegate", "runner", "cepctl". Call once at start. */
void cep_log_init(const char *comp);
void cep_log_set_level(enum cep_log_level min);
/* A process about one run (cep-runner): lines logged without a run id,
 * from lib/ too, carry this one. */
void cep_log_set_run(const char *run_id);
/* Quiet mode for cepctl: only warnings and errors reach stderr. */

void cep_log_write(enum cep_log_level lvl, const char *run_id, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

/* A line about the Kubernetes connector conn (CEP_CONNECTOR, conn=);
 * run_id and conn may be NULL or "". */
void cep_log_conn(enum cep_log_level lvl, const char *run_id, const char *conn,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define cep_log_info(run, ...) cep_log_write(CEP_LOG_INFO, (run), __VA_ARGS__)
#define cep_log_warn(run, ...) cep_log_write(CEP_LOG_WARN, (run), __VA_ARGS__)
#define cep_log_error(run, ...) cep_log_write(CEP_LOG_ERROR, (run), __VA_ARGS__)
#define cep_log_debug(run, ...) cep_log_write(CEP_LOG_DEBUG, (run), __VA_ARGS__)

#endif
