/*
 * nft.h - nftables tables that hold one network fault each.
 *
 * A fault is one table, family inet, named cep_<run-id hex>_<n>, created in
 * the target's network namespace in one netlink transaction. Its rules are
 * guarded by a set element with a timeout (set "armed"), so they stop
 * matching by themselves at the run's deadline even if the runner and the
 * delegate are both gone. Deleting the table is the undo; an absent table
 * is already undone. Rules are written in nft's own syntax and handed to
 * libnftables (the netlink library; nothing parses command output); the
 * one rule nft cannot express here (the xtables NFQUEUE target through
 * nft_compat, for kernels without the nft queue expression) is built with
 * libnftnl.
 */
#ifndef CEP_NFT_H
#define CEP_NFT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "netns.h"

#define CEP_NFT_TABLE_MAX 64
/* The guard set every rule of a fault table looks up (meta mark & 0). */
#define CEP_NFT_ARMED_SET "armed"

/* "cep_<16 hex digits of the run id>_<n>"; run_id "r-<16 hex>". */
int cep_nft_table_name(const char *run_id, unsigned n, char *buf, size_t len,
    cep_err *err);

/* Runs nft commands (native syntax) inside the namespace as one
 * transaction; nft's own message is the error on failure. */
int cep_nft_run(int nsfd, const char *cmds, cep_err *err);

/* Appends to chain a rule "meta mark & 0 == @armed" + xtables NFQUEUE
 * target (revision 3, queue qnum, bypass: packets pass when no program
 * listens, so a dead queue worker fails open). */
int cep_nft_add_nfqueue_rule(int nsfd, const char *table, const char *chain,
    uint16_t qnum, cep_err *err);

/* Whether table (family inet) exists in the namespace. */
int cep_nft_table_exists(int nsfd, const char *table, bool *exists,
    cep_err *err);

/* Deletes the table; absent = OK. Succeeds only when a later lookup
 * confirms it is gone. */
int cep_nft_delete_table(int nsfd, const char *table, cep_err *err);

/* Undo record: {"netns_dev", "netns_inode", "netns_path", "table"}. */
json_t *cep_nft_undo_json(const cep_netns_id *id, const char *path,
    const char *table);

/* lib/undo/undo.c mechanism "nftables": find the namespace by identity, delete
 * the table. A namespace that is truly gone counts as clean. */
int cep_nft_undo(const char *run_id, const char *undo_json, cep_err *err);

#endif
