/* undo_node.c - registers the node mechanisms' undo (see undo_node.h). */
#include "undo_node.h"

#include "diskfill.h"
#include "nft.h"
#include "tc.h"
#include "undo.h"

void cep_undo_node_register(void)
{
	(void)cep_undo_register("nftables", cep_nft_undo);
	(void)cep_undo_register("tc-qdisc", cep_tc_undo);
	(void)cep_undo_register("disk-fill", cep_diskfill_undo);
}
