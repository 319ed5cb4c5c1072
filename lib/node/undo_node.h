/*
 * undo_node.h - the node mechanisms' undo functions (nftables, tc-qdisc,
 * disk-fill) for lib/undo/undo.c's table. Part of the cep_node library: only
 * processes that act on a node (cep-runner and its cleanup mode) link it,
 * so the delegate and the relay carry no netfilter library.
 */
#ifndef CEP_UNDO_NODE_H
#define CEP_UNDO_NODE_H

/* Registers them all (cep_undo_register); call once at start. */
void cep_undo_node_register(void);

#endif
