/*
 * privs.c - a runner's privileges, set in the child between fork and
 * execv (see launcher.h). Raw capset/prctl: no libcap.
 *
 * The runner runs as uid 0 with every capability outside its mask gone
 * from the bounding set, so execv (where root's file capabilities count
 * as "all") yields exactly the mask, and no later execve, setuid binary
 * or file capability can bring one back (PR_SET_NO_NEW_PRIVS). Its fault
 * workers inherit the same sets.
 */
#define _GNU_SOURCE
#include "launcher_int.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "caps.h"
#include "files.h"

int launcher_privs_init(cep_launcher_privs *p, unsigned caps, bool set_caps,
    cep_err *err)
{
	p->mask = cep_caps_linux_mask(caps);
	p->set_caps = set_caps;
	p->last_cap = CAP_LAST_CAP;
	char *data = NULL;
	size_t len = 0;
	cep_err e = {0};
	/* the running kernel may know more capabilities than our headers */
	if (cep_files_read("/proc/sys/kernel/cap_last_cap", 32, &data, &len,
	        &e) == CEP_OK) {
		long v = strtol(data, NULL, 10);
		if (v > 0 && v < 64)
			p->last_cap = (int)v;
	}
	free(data);
	if (set_caps && (p->mask >> 32) != 0 && p->last_cap < 32)
		return cep_err_set(err, CEP_INTERNAL,
		    "capability mask beyond "
		    "the kernel's last capability %d",
		    p->last_cap);
	return CEP_OK;
}

int launcher_privs_apply(void *arg)
{
	const cep_launcher_privs *p = arg;
	if (!p->set_caps)
		return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0;
	/* gid 0: the launcher's group (Group=, the socket's group) is not
	 * the runners' */
	if ((getgid() != 0 || getegid() != 0) &&
	    (setgroups(0, NULL) != 0 || setgid(0) != 0))
		return -1;
	/* the bounding set first: dropping needs CAP_SETPCAP, which the
	 * capset below takes away */
	for (int c = 0; c <= p->last_cap; c++)
		if (!(p->mask & (UINT64_C(1) << c)) &&
		    prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL)
			return -1;
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	uint32_t lo = (uint32_t)p->mask, hi = (uint32_t)(p->mask >> 32);
	struct __user_cap_data_struct d[2] = {{lo, lo, lo}, {hi, hi, hi}};
	if (syscall(SYS_capset, &h, d) != 0)
		return -1;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0)
		return -1;
	for (int c = 0; c <= p->last_cap; c++)
		if ((p->mask & (UINT64_C(1) << c)) &&
		    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) != 0)
			return -1;
	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0;
}
