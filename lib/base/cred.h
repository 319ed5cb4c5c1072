/*
 * cred.h - secrets handed to a daemon as systemd credentials.
 *
 * Under systemd each unit loads the folders of its secrets with
 * LoadCredential=<id>:<folder> (the units in appliance/systemd): systemd
 * copies every file of the folder to the unit's private
 * $CREDENTIALS_DIRECTORY as "<id>_<file>", owned by the unit's user, mode
 * 0400, visible to no other unit. Two ids, because a second
 * LoadCredential= with the same id replaces the first (systemd 252):
 *   cep         the unit's own folder (cep-relay: /etc/cep/relay)
 *   cep-shared  /etc/cep/credentials, what relay and delegate both need
 *               (the control plane's token, client key, CA) The files themselves stay root:root
 * 0600, so no secret file is readable by two users (docs/privsep.md,
 * Secrets).
 *
 * A daemon asks for a secret by the path cep.yaml (or the layout) names;
 * the credential with that file name wins when systemd loaded one. Else
 * the configured path is read as before, with the strict mode checks.
 */
#ifndef CEP_CRED_H
#define CEP_CRED_H

#include <stdbool.h>
#include <stddef.h>

/* Writes into out the file to read for the secret configured at path:
 * $CREDENTIALS_DIRECTORY/cep_<file name of path>, else .../cep-shared_<file
 * name>, when that is a regular file (returns true: systemd made it
 * private to this unit, its mode needs no check), else path itself
 * (returns false). "" stays "". */
bool cep_cred_path(const char *path, char *out, size_t len);

#endif
