/* cmd_common.h - argument parsing shared by cepctl commands. */
#ifndef CEPCTL_CMD_COMMON_H
#define CEPCTL_CMD_COMMON_H

#include <stdbool.h>

#include "cli.h"

typedef struct cepctl_flag {
	const char *name;   /* "--appliance" */
	const char **value; /* set to the following argument */
} cepctl_flag;

/* Parses argv[1..] (argv[0] is the command name). Returns -1 after
 * printing what was wrong. */
int cepctl_parse_args(cepctl_opts *o, int argc, char **argv,
    const cepctl_flag *extra, const char **pos, int max_pos, int *npos);

/* Commands that take exactly one argument (a RUN, a FILE, a DIR): parses
 * the arguments, prints "usage: <usage>" on a wrong count. -1 after
 * printing what was wrong. */
int cepctl_one_arg(cepctl_opts *o, int argc, char **argv, const char *usage,
    const char **arg);

/* Commands that take exactly one RUN (show, logs, abort): parses the
 * arguments, prints usage on a wrong count, opens the Admin connection.
 * -1 after printing what was wrong. */
int cepctl_one_run(cepctl_opts *o, int argc, char **argv, const char *usage,
    const char **run, cepctl_admin **a);

#endif
