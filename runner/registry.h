/*
 * registry.h - the lookup by type name shared by the runner's registries
 * (faults: fault.c, probes: probe.c). A macro, not a function over void
 * pointers, so each registry keeps its own element type.
 */
#ifndef CEP_RUNNER_REGISTRY_H
#define CEP_RUNNER_REGISTRY_H

#include <stddef.h>
#include <string.h>

/* Defines `const T *fn(const char *type)`: the entry of reg (an array of
 * pointers to T, each naming itself in its member `type`) whose type is
 * type, or NULL (also for type NULL). */
#define CEP_RUNNER_REGISTRY_FIND(fn, T, reg)                                  \
	const T *fn(const char *type)                                         \
	{                                                                     \
		for (size_t i = 0;                                            \
		     type != NULL && i < sizeof(reg) / sizeof((reg)[0]); i++) \
			if (strcmp((reg)[i]->type, type) == 0)                \
				return (reg)[i];                              \
		return NULL;                                                  \
	}

#endif
