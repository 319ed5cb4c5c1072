/* test_diskfill.c - undoing a disk fill (lib/node/diskfill.c) on its own:
 * only a fill file of the run is ever removed, whatever the record says;
 * the file is found by its directory's identity, not its path; the undo
 * is idempotent; a directory that moved while its filesystem stays
 * mounted is an error, never "undone". */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diskfill.h"
#include "testutil.h"
#include "files.h"

#define RUN_ID "r-0123456789abcdef"
#define FILL ".cep-fill-r-0123456789abcdef-2"

Test(diskfill, only_fill_files_of_the_run)
{
	cr_assert(cep_diskfill_name_ok(RUN_ID, FILL));
	cr_assert(
	    cep_diskfill_name_ok(RUN_ID, ".cep-fill-r-0123456789abcdef-0"));
	const char *bad[] = {"", "victim", ".cep-fill-r-0123456789abcdef-",
	    ".cep-fill-r-0123456789abcdef-2x", ".cep-fill-r-fedcba9876543210-2",
	    ".cep-fill-r-0123456789abcdef-1234567890123",
	    "../.cep-fill-r-0123456789abcdef-2",
	    ".cep-fill-r-0123456789abcdef"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert(!cep_diskfill_name_ok(RUN_ID, bad[i]), "%s", bad[i]);
}

/* dir/name with a few bytes; the record of dir as the runner writes it. */
static void record(const char *dir, const char *name, char *json, size_t len)
{
	char path[512];
	cep_err err = {0};
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	cr_assert_eq(cep_files_write(path, "fill", 4, 0600, &err), CEP_OK, "%s",
	    err.msg);
	struct stat st;
	cr_assert_eq(stat(dir, &st), 0);
	snprintf(json, len,
	    "{\"path\": \"%s\", \"dev\": %llu, "
	    "\"ino_dir\": %llu, \"name\": \"%s\"}",
	    dir, (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
	    name);
}

static bool exists(const char *dir, const char *name)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

Test(diskfill, undo_removes_the_fill_file_once)
{
	char *dir = cep_test_tmpdir("diskfill");
	char json[1024];
	cep_err err = {0};
	record(dir, FILL, json, sizeof(json));
	cr_assert(exists(dir, FILL));
	cr_assert_eq(cep_diskfill_undo(RUN_ID, json, &err), CEP_OK, "%s",
	    err.msg);
	cr_assert(!exists(dir, FILL));
	/* idempotent: absent is undone */
	cr_assert_eq(cep_diskfill_undo(RUN_ID, json, &err), CEP_OK, "%s",
	    err.msg);
	cep_test_rmdir(dir);
}

Test(diskfill, refusals_remove_nothing)
{
	char *dir = cep_test_tmpdir("diskfill");
	char json[1024];
	cep_err err = {0};
	/* a runner's record naming another file */
	record(dir, "victim", json, sizeof(json));
	cr_assert_eq(cep_diskfill_undo(RUN_ID, json, &err),
	    CEP_INVALID_ARGUMENT);
	cr_assert(exists(dir, "victim"));
	/* another run's fill file */
	cr_assert_eq(cep_diskfill_undo("r-fedcba9876543210", json, &err),
	    CEP_INVALID_ARGUMENT);
	cr_assert_neq(cep_diskfill_undo("not a run id", json, &err), CEP_OK);
	cr_assert_neq(cep_diskfill_undo(RUN_ID, "not json", &err), CEP_OK);
	cr_assert_neq(cep_diskfill_undo(RUN_ID,
	                  "{\"path\": \"rel\", "
	                  "\"dev\": 1, \"ino_dir\": 1, \"name\": \"" FILL "\"}",
	                  &err),
	    CEP_OK);
	cep_test_rmdir(dir);
}

Test(diskfill, a_moved_directory_on_a_mounted_filesystem_is_not_undone)
{
	char *dir = cep_test_tmpdir("diskfill");
	char json[1024], other[600];
	cep_err err = {0};
	record(dir, FILL, json, sizeof(json));
	/* the directory is renamed: the path now names nothing, the
	 * filesystem (dev) is still mounted, the file may remain */
	snprintf(other, sizeof(other), "%s.moved", dir);
	cr_assert_eq(rename(dir, other), 0);
	cr_assert_eq(cep_diskfill_undo(RUN_ID, json, &err), CEP_INTERNAL);
	cr_assert(strstr(err.msg, "still mounted") != NULL, "%s", err.msg);
	cr_assert(exists(other, FILL));
	cr_assert_eq(rename(other, dir), 0);
	cep_test_rmdir(dir);
}
