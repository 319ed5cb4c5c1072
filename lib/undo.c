/* undo.c - the mechanism -> undo function table (see undo.h). */
#include "undo.h"

#include <string.h>

#include "diskfill.h"
#include "nft.h"
#include "tc.h"

int cep_undo_none(const char *run_id, const char *undo_json, cep_err *err)
{
	(void)run_id;
	(void)undo_json;
	(void)err;
	return CEP_OK;
}

static const struct {
	const char *mechanism;
	cep_undo_fn fn;
} undo_table[] = {
    {"signal", cep_undo_none},
    {"child-process", cep_undo_none},
    {"nftables", cep_nft_undo},
    {"tc-qdisc", cep_tc_undo},
    {"disk-fill", cep_diskfill_undo},
    /* network and disk mechanisms add their undo functions here */
};

int cep_undo_apply(const Cep__V1__FaultRecord *rec, cep_err *err)
{
	if (rec == NULL || rec->mechanism == NULL)
		return cep_err_set(err, CEP_INVALID_ARGUMENT, "no fault record");
	for (size_t i = 0; i < sizeof(undo_table) / sizeof(undo_table[0]); i++)
		if (strcmp(undo_table[i].mechanism, rec->mechanism) == 0)
			return undo_table[i].fn(rec->run_id, rec->undo, err);
	return cep_err_set(err, CEP_UNIMPLEMENTED,
	    "fault %s: no undo for mechanism \"%s\"", rec->fault_id,
	    rec->mechanism);
}
