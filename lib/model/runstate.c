/* runstate.c - see runstate.h. */
#include "runstate.h"

bool cep_runstate_final(Cep__V1__RunState st)
{
	return st == CEP__V1__RUN_STATE__RUN_PASSED ||
	    st == CEP__V1__RUN_STATE__RUN_FAILED ||
	    st == CEP__V1__RUN_STATE__RUN_ABORTED ||
	    st == CEP__V1__RUN_STATE__RUN_ERROR;
}

const char *cep_runstate_name(Cep__V1__RunState st)
{
	switch (st) {
	case CEP__V1__RUN_STATE__RUN_PENDING: return "PENDING";
	case CEP__V1__RUN_STATE__RUN_LAUNCHING: return "LAUNCHING";
	case CEP__V1__RUN_STATE__RUN_RUNNING: return "RUNNING";
	case CEP__V1__RUN_STATE__RUN_CLEANUP: return "CLEANUP";
	case CEP__V1__RUN_STATE__RUN_PASSED: return "PASSED";
	case CEP__V1__RUN_STATE__RUN_FAILED: return "FAILED";
	case CEP__V1__RUN_STATE__RUN_ABORTED: return "ABORTED";
	case CEP__V1__RUN_STATE__RUN_ERROR: return "ERROR";
	default: return "UNSPECIFIED";
	}
}
