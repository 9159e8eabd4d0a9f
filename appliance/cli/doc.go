// Package cli is the operator command line of BES: `bes init`, `backup`,
// `image`, `points`, `ls`, `find`, `restore`, `mount`, `verify`, `scrub`,
// `catalog rebuild` and `serve`. Each command is a run function over an
// options struct that tests call in-process; cmd/bes only maps the result
// to an exit code.
//
// Conventions follow restic: BES_REPO, BES_PASSWORD, BES_PASSWORD_FILE
// (and BES_KEY_FILE for a key-file KEK), `--json` for machines, a progress
// bar on a terminal.
package cli
