#!/usr/bin/env bash
# bench-lifecycle.sh BES_BINARY — repository lifecycle at scale: garbage
# collection (bes gc against restic prune on the same data, in the same run)
# and replication to a second local disk set; prints a table with the
# issue's targets (and writes JSON to $BENCH_OUT).
#
# GC: a corpus of BENCH_GC_FILES small distinct files (400-800 seeded random
# bytes each: one chunk each in both tools) spread over BENCH_GC_DIRS
# directories. Each tool backs it up (point 1); ~BENCH_GC_DELETE_PCT% of the
# files are deleted (seeded); each tool backs it up again (point 2) and
# forgets point 1; then `restic prune` and `bes gc`, both with their
# defaults, run under /usr/bin/time -v (wall time, peak RSS). Chunk counts
# before and after: BES from catalog.db, restic from `restic list blobs`.
# Replication: a fresh BES repository with one point of ~BENCH_REPL_MB MiB in
# a few large files (half random, half ~2:1 compressible), a replica made
# with `bes init --replica-of` on a second 4+2 disk set, and `bes replicate`
# timed (MB/s over the stored bytes of the source point).
#
# Environment:
#   BENCH_DIR          scratch directory (default: mktemp -d /tmp/bes-bench-lc.XXXXXX)
#   BENCH_KEEP=1       keep the scratch directory (and its mounted file system) at exit
#   BENCH_GC_FILES     files (= chunks) in the gc corpus (default 1000000; 0 skips gc)
#   BENCH_GC_DIRS      directories they are spread over (default 1000)
#   BENCH_GC_DELETE_PCT  percentage of the files deleted before point 2 (default 50)
#   BENCH_REPL_MB      MiB in the replicated point (default 1024; 0 skips replication)
#   BENCH_REPL_S3      1 (default): also replicate the same point to an S3 replica
#                      on a real S3 server on 127.0.0.1 (versitygw v1.8.0, built once
#                      into /var/cache/bes-tools, or $BES_VERSITYGW); 0: local only
#   BENCH_FS           auto (default): loop as root, else dir; loop: everything lives
#                      in a fresh ext4 on a loop device, sized (sparse) and given
#                      inodes for the run, so a million creates and deletes never
#                      touch the shared root file system; dir: in the scratch dir
#   BENCH_COLD         1 (default): evict the repositories' files from the page
#                      cache (fadvise DONTNEED on those files only) before each
#                      timed forget, prune, gc and replicate; 0: leave them cached
#   BENCH_GC_FULL      1 (default): after the timed default gc, time a second
#                      bes gc --repack-below 95 --max-repack-percent 100 (about
#                      what restic prune's --max-unused 5% does) as context; 0: skip
#   BENCH_CHECK        1 (default): restic check and bes verify after gc, bes
#                      verify of the replica; 0: skip
#   BENCH_PROFILE_DIR  write CPU profiles of the timed bes gc and bes replicate there
#   BENCH_SEED         generator seed (default 20240601)
#   BENCH_OUT          JSON results file (default ./bench-lifecycle.json)
#   BENCH_CMD_TIMEOUT  seconds before a measured command is killed (default 3600)
#
# Needs root for BENCH_FS=loop and for apt-get if restic, GNU time, bc,
# python3, sqlite3 or mkfs.ext4 are missing.
set -euo pipefail

PROG=bench-lifecycle
T_START=$(date +%s)

log() { printf '[%s %s] %s\n' "$PROG" "$(date +%H:%M:%S)" "$*" >&2; }
die() {
	printf '[%s %s] FAILED: %s\n' "$PROG" "$(date +%H:%M:%S)" "$*" >&2
	exit 1
}

usage() {
	sed -n '2,46p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

[[ $# -eq 1 ]] || usage
case "$1" in -h | --help) usage ;; esac

# ------------------------------------------------------------------ settings
BES_IN=$1
if [[ $BES_IN != */* ]] && ! [[ -e $BES_IN ]]; then
	BES_IN=$(command -v "$BES_IN" || true)
fi
[[ -n $BES_IN && -f $BES_IN && -x $BES_IN ]] || die "BES binary '$1' not found or not executable (build it first: make build)"
BES=$(cd "$(dirname "$BES_IN")" && pwd)/$(basename "$BES_IN")

GC_FILES=${BENCH_GC_FILES:-1000000}
GC_DIRS=${BENCH_GC_DIRS:-1000}
DEL_PCT=${BENCH_GC_DELETE_PCT:-50}
REPL_MB=${BENCH_REPL_MB:-1024}
REPL_S3=${BENCH_REPL_S3:-1}
FS_MODE=${BENCH_FS:-auto}
COLD=${BENCH_COLD:-1}
CHECK=${BENCH_CHECK:-1}
GC_FULL=${BENCH_GC_FULL:-1}
PROFILE_DIR=${BENCH_PROFILE_DIR:-}
SEED=${BENCH_SEED:-20240601}
CMD_TIMEOUT=${BENCH_CMD_TIMEOUT:-3600}
OUT=${BENCH_OUT:-./bench-lifecycle.json}
[[ $OUT == /* ]] || OUT="$PWD/$OUT"
[[ $GC_FILES =~ ^[0-9]+$ ]] || die "BENCH_GC_FILES must be a non-negative integer, got '$GC_FILES'"
[[ $GC_DIRS =~ ^[0-9]+$ && $GC_DIRS -ge 1 ]] || die "BENCH_GC_DIRS must be a positive integer, got '$GC_DIRS'"
[[ $DEL_PCT =~ ^[0-9]+$ && $DEL_PCT -ge 1 && $DEL_PCT -le 99 ]] || die "BENCH_GC_DELETE_PCT must lie in 1..99, got '$DEL_PCT'"
[[ $REPL_MB =~ ^[0-9]+$ ]] || die "BENCH_REPL_MB must be a non-negative integer, got '$REPL_MB'"
((REPL_MB == 0 || REPL_MB >= 8)) || die "BENCH_REPL_MB must be 0 (skip) or at least 8, got '$REPL_MB'"
((GC_FILES > 0 || REPL_MB > 0)) || die "BENCH_GC_FILES=0 and BENCH_REPL_MB=0: nothing to measure"
[[ $REPL_S3 == 0 || $REPL_S3 == 1 ]] || die "BENCH_REPL_S3 must be 0 or 1, got '$REPL_S3'"
[[ $COLD == 0 || $COLD == 1 ]] || die "BENCH_COLD must be 0 or 1, got '$COLD'"
[[ $CHECK == 0 || $CHECK == 1 ]] || die "BENCH_CHECK must be 0 or 1, got '$CHECK'"
[[ $GC_FULL == 0 || $GC_FULL == 1 ]] || die "BENCH_GC_FULL must be 0 or 1, got '$GC_FULL'"
[[ $SEED =~ ^[0-9]+$ ]] || die "BENCH_SEED must be a non-negative integer, got '$SEED'"
[[ $CMD_TIMEOUT =~ ^[0-9]+$ ]] || die "BENCH_CMD_TIMEOUT must be an integer (seconds), got '$CMD_TIMEOUT'"
if [[ $FS_MODE == auto ]]; then
	FS_MODE=dir
	[[ $(id -u) -eq 0 ]] && FS_MODE=loop
fi
[[ $FS_MODE == loop || $FS_MODE == dir ]] || die "BENCH_FS must be auto, loop or dir, got '$FS_MODE'"
[[ $FS_MODE == dir || $(id -u) -eq 0 ]] || die "BENCH_FS=loop needs root (losetup, mount); use BENCH_FS=dir"
if [[ -n $PROFILE_DIR ]]; then
	mkdir -p "$PROFILE_DIR" || die "cannot create BENCH_PROFILE_DIR $PROFILE_DIR"
	PROFILE_DIR=$(cd "$PROFILE_DIR" && pwd -P)
fi

EC_K=4
EC_M=2
PASSWORD=bench-pw
MiB=$((1 << 20))

# ------------------------------------------------------------------ tools
apt_install() {
	[[ $(id -u) -eq 0 ]] || die "need to install $* but not running as root (install it by hand: apt-get install $*)"
	log "installing $* from Debian"
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -o DPkg::Lock::Timeout=300 "$@" >/tmp/$PROG-apt.log 2>&1; then
		log "apt-get install failed; running apt-get update and retrying"
		DEBIAN_FRONTEND=noninteractive apt-get update >>/tmp/$PROG-apt.log 2>&1 ||
			{ tail -n 20 /tmp/$PROG-apt.log >&2; die "apt-get update failed"; }
		DEBIAN_FRONTEND=noninteractive apt-get install -y -o DPkg::Lock::Timeout=300 "$@" >>/tmp/$PROG-apt.log 2>&1 ||
			{ tail -n 20 /tmp/$PROG-apt.log >&2; die "apt-get install $* failed"; }
	fi
}

need=()
command -v restic >/dev/null 2>&1 || need+=(restic)
[[ -x /usr/bin/time ]] || need+=(time)
command -v bc >/dev/null 2>&1 || need+=(bc)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v sqlite3 >/dev/null 2>&1 || need+=(sqlite3)
[[ $FS_MODE == dir ]] || command -v mkfs.ext4 >/dev/null 2>&1 || need+=(e2fsprogs)
if ((${#need[@]})); then apt_install "${need[@]}"; fi
for c in restic bc python3 sqlite3 du df sync timeout truncate; do
	command -v "$c" >/dev/null 2>&1 || die "required command '$c' is not available"
done
if [[ $FS_MODE == loop ]]; then
	for c in mkfs.ext4 losetup mount umount mountpoint; do
		command -v "$c" >/dev/null 2>&1 || die "required command '$c' is not available"
	done
fi
[[ -x /usr/bin/time ]] || die "GNU time (/usr/bin/time) is not available"
/usr/bin/time -v true 2>&1 | grep -q 'Maximum resident set size' || die "/usr/bin/time is not GNU time (no -v support)"
RESTIC_VERSION=$(restic version 2>/dev/null | head -n 1) || die "'restic version' failed"

# ------------------------------------------------------------------ scratch dir
OURS='^(fs|fs\.img|logs|results\.tsv|meta\.tsv)$'
CREATED_D=0
if [[ -n ${BENCH_DIR:-} ]]; then
	[[ -e $BENCH_DIR ]] || { mkdir -p "$BENCH_DIR" && CREATED_D=1; } || die "cannot create BENCH_DIR $BENCH_DIR"
	D=$(cd "$BENCH_DIR" && pwd -P)
	# refuse to scribble over a directory that holds other things
	for x in "$D"/*; do
		[[ -e $x ]] || continue
		[[ $(basename "$x") =~ $OURS ]] ||
			die "BENCH_DIR $D holds '$(basename "$x")', which this script did not make; use an empty or new directory"
	done
else
	D=$(mktemp -d /tmp/bes-bench-lc.XXXXXX) || die "mktemp failed"
	D=$(cd "$D" && pwd -P)
	CREATED_D=1
fi
FS=$D/fs # everything the tools touch lives here (a loop-mounted ext4 with BENCH_FS=loop)
IMG=$D/fs.img
L=$D/logs
LOOP=

release_fs() {
	if [[ -d $FS ]] && mountpoint -q "$FS"; then
		umount "$FS" 2>/dev/null || umount -l "$FS" 2>/dev/null || true
	fi
	if [[ -f $IMG ]]; then
		losetup -j "$IMG" 2>/dev/null | cut -d: -f1 | while IFS= read -r dev; do
			[[ -n $dev ]] && { losetup -d "$dev" 2>/dev/null || true; }
		done
	fi
	return 0
}

VGW_PID=
cleanup() {
	local rc=$?
	if [[ -n $VGW_PID ]]; then kill "$VGW_PID" 2>/dev/null || true; fi
	if [[ ${BENCH_KEEP:-0} == 1 ]]; then
		log "keeping scratch directory $D (BENCH_KEEP=1)"
		if [[ -n $LOOP ]] && mountpoint -q "$FS" 2>/dev/null; then
			log "  $FS stays mounted from $LOOP; release it with: umount $FS && losetup -d $LOOP"
		fi
		return $rc
	fi
	if ((rc != 0)) && [[ -d $L ]]; then
		rm -rf "$D.logs" && cp -a "$L" "$D.logs" && log "logs of the failed run copied to $D.logs"
	fi
	release_fs
	if [[ $CREATED_D == 1 ]]; then
		rm -rf "$D"
	else
		rm -rf "$FS" "$IMG" "$L" "$D/results.tsv" "$D/meta.tsv"
	fi
	return $rc
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

mkdir -p "$L"
: >"$D/results.tsv"
: >"$D/meta.tsv"
meta() { printf '%s\t%s\n' "$1" "$2" >>"$D/meta.tsv"; }

# ------------------------------------------------------------------ space
# What the run writes, generously: the gc corpus takes a 4 KiB block per
# file; restic stores ~700 bytes per chunk and prune writes its new packs
# before deleting the old; BES stores ~700 bytes per chunk x 6/4 (EC) plus
# ~400 catalog bytes; replication holds the data three times (files, source
# x 6/4, replica x 6/4, at most: the compressible half shrinks).
NEED_BYTES=$((GC_FILES * (4300 + 1700 + 150 + 1700) + REPL_MB * MiB * 4))
NEED_BYTES=$(((NEED_BYTES + NEED_BYTES / 4 + (1 << 30)) / MiB * MiB))
NEED_INODES=$((GC_FILES + GC_DIRS + 200000))
read -r LOAD_START _ </proc/loadavg
UPTIME_START=$(uptime)
log "scratch directory $D; file system: $FS_MODE; needs up to $((NEED_BYTES >> 30)) GiB and $NEED_INODES inodes"
log "load: $UPTIME_START"
avail=$(df -B1 --output=avail "$D" | tail -n 1 | tr -d ' ')
ifree=$(df --output=iavail "$D" | tail -n 1 | tr -d ' ')
log "  $(df -h --output=source,size,used,avail,pcent "$D" | tail -n 1 | tr -s ' ') (bytes)"
log "  $(df --output=source,itotal,iused,iavail,ipcent "$D" | tail -n 1 | tr -s ' ') (inodes)"
((avail >= NEED_BYTES)) || die "the file system of $D has $((avail >> 30)) GiB free, the run needs up to $((NEED_BYTES >> 30)) GiB: set BENCH_DIR elsewhere or lower BENCH_GC_FILES / BENCH_REPL_MB"
if [[ $FS_MODE == dir ]]; then
	[[ $ifree =~ ^[0-9]+$ ]] && ((ifree < NEED_INODES)) &&
		die "the file system of $D has $ifree free inodes, the run needs $NEED_INODES: use BENCH_FS=loop (as root) or lower BENCH_GC_FILES"
	mkdir -p "$FS"
else
	release_fs
	rm -rf "$FS" "$IMG"
	truncate -s "$NEED_BYTES" "$IMG" || die "truncate $IMG"
	# Inode tables and the journal are written now, not by a background
	# thread during the measurements.
	mkfs.ext4 -q -F -m 0 -N "$NEED_INODES" -E lazy_itable_init=0,lazy_journal_init=0 "$IMG" >"$L/mkfs.log" 2>&1 ||
		die "mkfs.ext4 $IMG failed (see $L/mkfs.log)"
	# --direct-io: the loop device writes through like a real disk instead
	# of caching everything a second time for its backing file.
	LOOP=$(losetup -f --show --direct-io=on "$IMG") || die "losetup $IMG failed"
	mkdir -p "$FS"
	mount "$LOOP" "$FS" || die "mounting $LOOP on $FS failed"
	log "  fresh ext4 on $LOOP ($((NEED_BYTES >> 30)) GiB sparse image, $NEED_INODES inodes) mounted at $FS"
fi
meta fs_mode "$FS_MODE"

# A clean, fixed environment for both tools.
unset RESTIC_PASSWORD_FILE RESTIC_PASSWORD_COMMAND RESTIC_KEY_HINT RESTIC_COMPRESSION RESTIC_PACK_SIZE \
	RESTIC_REPOSITORY_FILE RESTIC_HOST BES_PASSWORD_FILE BES_KEY_FILE BES_CPUPROFILE BES_TRACE GOGC GOMEMLIMIT
export RESTIC_REPOSITORY=$FS/restic RESTIC_PASSWORD=$PASSWORD RESTIC_CACHE_DIR=$FS/restic-cache
export BES_REPO=$FS/bes BES_PASSWORD=$PASSWORD

# ------------------------------------------------------------------ running commands
# show_failure NAME RC CMD... : print the failed command and the tails of its output.
show_failure() {
	local name=$1 rc=$2
	shift 2
	{
		echo "----------------------------------------------------------------------"
		printf 'command failed (exit %s):' "$rc"
		printf ' %q' "$@"
		echo
		[[ $rc == 124 ]] && echo "(killed after BENCH_CMD_TIMEOUT=${CMD_TIMEOUT}s)"
		if [[ -s $L/$name.err ]]; then
			echo "--- last lines of stderr ($L/$name.err):"
			tail -n 40 "$L/$name.err"
		else
			echo "--- stderr was empty"
		fi
		if [[ -s $L/$name.out ]]; then
			echo "--- last lines of stdout ($L/$name.out):"
			tail -n 10 "$L/$name.out"
		fi
		echo "----------------------------------------------------------------------"
	} >&2
}

# step NAME CMD... : run an unmeasured command, output to $L/NAME.{out,err}.
step() {
	local name=$1 rc=0
	shift
	"$@" >"$L/$name.out" 2>"$L/$name.err" </dev/null || rc=$?
	if ((rc != 0)); then
		show_failure "$name" "$rc" "$@"
		die "step '$name' failed"
	fi
}

# measure PHASE TOOL CMD... : run CMD under /usr/bin/time -v (output in
# $L/PHASE-TOOL.{out,err,time}) and append "phase tool wall_s maxrss_kib
# user_s sys_s load1" to results.tsv.
measure() {
	local phase=$1 tool=$2
	shift 2
	local name="$phase-$tool" rc=0 t0 t1 wall rss usr sys load1 _rest
	sync
	read -r load1 _rest </proc/loadavg
	t0=$(date +%s.%N)
	timeout --kill-after=30 "$CMD_TIMEOUT" /usr/bin/time -v -o "$L/$name.time" "$@" >"$L/$name.out" 2>"$L/$name.err" </dev/null || rc=$?
	t1=$(date +%s.%N)
	if ((rc != 0)); then
		show_failure "$name" "$rc" "$@"
		die "$tool $phase failed"
	fi
	wall=$(echo "$t1 - $t0" | bc -l)
	rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$L/$name.time")
	usr=$(awk -F': ' '/User time \(seconds\)/ {print $2}' "$L/$name.time")
	sys=$(awk -F': ' '/System time \(seconds\)/ {print $2}' "$L/$name.time")
	[[ -n $rss && -n $usr && -n $sys ]] || die "could not parse /usr/bin/time output $L/$name.time"
	printf '%s\t%s\t%.3f\t%s\t%s\t%s\t%s\n' "$phase" "$tool" "$wall" "$rss" "$usr" "$sys" "$load1" >>"$D/results.tsv"
	log "  $tool $phase: $(printf '%.2f' "$wall") s, peak RSS $((rss / 1024)) MiB (load $load1)"
}

bytes_of() { du -sb "$@" | awk '{s += $1} END {print s + 0}'; }
csv() {
	local IFS=,
	echo "$*"
}
disks_of() { # disks_of PREFIX: the K+M disk directories PREFIX-disk1..N
	local i out=()
	for ((i = 1; i <= EC_K + EC_M; i++)); do out+=("$1-disk$i"); done
	echo "${out[@]}"
}

# evict PATH...: with BENCH_COLD=1, drop the pages of the files under PATH
# from the page cache (written back first), so that the next command reads
# them from the disk; nothing else on the machine is touched.
evict() {
	[[ $COLD == 1 ]] || return 0
	sync
	python3 - "$@" <<'PY' || die "evicting $* from the page cache failed"
import os, sys
for top in sys.argv[1:]:
    for dp, _, files in os.walk(top):
        for f in files:
            try:
                fd = os.open(os.path.join(dp, f), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
PY
}

# prof NAME: set PROF to the command prefix that makes bes write a CPU
# profile to BENCH_PROFILE_DIR/NAME.prof (empty without BENCH_PROFILE_DIR).
PROF=()
prof() {
	PROF=()
	[[ -z $PROFILE_DIR ]] || PROF=(env "BES_CPUPROFILE=$PROFILE_DIR/$1.prof")
}

# json_get FILE EXPR: evaluate a Python expression over the JSON document j in FILE.
json_get() {
	python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2" ||
		die "could not read '$2' from $1"
}

# ------------------------------------------------------------------ gc: corpus
# gc_corpus DIR: GC_FILES files of 400-800 seeded random bytes in GC_DIRS
# directories (file i in directory i mod GC_DIRS); the same settings give
# the same bytes.
gc_corpus() {
	python3 - "$1" "$GC_FILES" "$GC_DIRS" "$SEED" <<'PY'
import multiprocessing, os, random, sys
root, n, dirs, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

def make(d):
    rng = random.Random(seed * 1000003 + d)
    p = os.path.join(root, "d%05d" % d)
    os.makedirs(p, exist_ok=True)
    files = total = 0
    for i in range(d, n, dirs):
        b = rng.randbytes(rng.randint(400, 800))
        with open(os.path.join(p, "f%08d" % i), "wb") as f:
            f.write(b)
        files += 1
        total += len(b)
    return files, total

with multiprocessing.get_context("fork").Pool(os.cpu_count()) as pool:
    res = pool.map(make, range(dirs), chunksize=8)
print(sum(r[0] for r in res), sum(r[1] for r in res))
PY
}

# gc_delete DIR: delete ~DEL_PCT% of the files, chosen by seed.
gc_delete() {
	python3 - "$1" "$DEL_PCT" "$SEED" <<'PY'
import multiprocessing, os, random, sys
root, pct, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def thin(name):
    d = int(name[1:])
    rng = random.Random(seed * 7919 + d + 1)
    gone = 0
    p = os.path.join(root, name)
    for f in sorted(os.listdir(p)):
        if rng.random() * 100 < pct:
            os.unlink(os.path.join(p, f))
            gone += 1
    return gone

names = sorted(os.listdir(root))
with multiprocessing.get_context("fork").Pool(os.cpu_count()) as pool:
    print(sum(pool.map(thin, names, chunksize=8)))
PY
}

# restic_blobs TAG: count the blobs in restic's index (data, tree) into meta.
restic_blobs() {
	step "restic-list-blobs-$1" restic list blobs
	local data tree
	data=$(awk '$1 == "data"' "$L/restic-list-blobs-$1.out" | wc -l)
	tree=$(awk '$1 == "tree"' "$L/restic-list-blobs-$1.out" | wc -l)
	rm -f "$L/restic-list-blobs-$1.out"
	meta "restic_blobs_$1" $((data + tree))
	meta "restic_data_blobs_$1" "$data"
	meta "restic_tree_blobs_$1" "$tree"
	meta "restic_bytes_$1" "$(bytes_of "$RESTIC_REPOSITORY")"
	log "  restic $1: $((data + tree)) blobs ($data data, $tree tree), $(($(bytes_of "$RESTIC_REPOSITORY") / MiB)) MiB"
}

# bes_chunks TAG: count the chunks in BES's catalog (all, unreferenced) into meta.
bes_chunks() {
	local n garbage disks repo
	n=$(sqlite3 "$BES_REPO/catalog.db" 'SELECT count(*) FROM chunks') || die "sqlite3 $BES_REPO/catalog.db failed"
	garbage=$(sqlite3 "$BES_REPO/catalog.db" 'SELECT count(*) FROM chunks WHERE refs = 0') || die "sqlite3 $BES_REPO/catalog.db failed"
	# shellcheck disable=SC2046
	disks=$(bytes_of $(disks_of "$FS/bes"))
	repo=$(bytes_of "$BES_REPO")
	meta "bes_chunks_$1" "$n"
	meta "bes_unreferenced_$1" "$garbage"
	meta "bes_disk_bytes_$1" "$disks"
	meta "bes_repo_bytes_$1" "$repo"
	log "  bes $1: $n chunks ($garbage unreferenced), disks $((disks / MiB)) MiB ($((disks * EC_K / (EC_K + EC_M) / MiB)) MiB before EC), repository dir $((repo / MiB)) MiB"
}

# ------------------------------------------------------------------ gc: phases
run_gc() {
	local corpus=$FS/gc-corpus out p1 r1 deleted
	log "gc: building the corpus: $GC_FILES files of 400-800 random bytes in $GC_DIRS directories (seed $SEED)"
	step gc-corpus gc_corpus "$corpus"
	read -r files bytes <"$L/gc-corpus.out"
	[[ $files == "$GC_FILES" ]] || die "the generator wrote $files files, not $GC_FILES"
	meta gc_files "$files"
	meta gc_file_bytes "$bytes"
	log "  $files files, $((bytes / MiB)) MiB of content"

	step restic-init restic init
	# shellcheck disable=SC2046
	step bes-init "$BES" init --disks "$(csv $(disks_of "$FS/bes"))" --ec "$EC_K+$EC_M"

	log "gc: point 1, all $files files"
	measure backup1 restic restic backup --host bench "$corpus"
	measure backup1 bes "$BES" backup "$corpus" --host bench --json

	log "gc: deleting ~$DEL_PCT% of the files"
	step gc-delete gc_delete "$corpus"
	deleted=$(cat "$L/gc-delete.out")
	meta gc_deleted "$deleted"
	log "  deleted $deleted files, $((files - deleted)) left"

	log "gc: point 2, the $((files - deleted)) files left"
	measure backup2 restic restic backup --host bench "$corpus"
	measure backup2 bes "$BES" backup "$corpus" --host bench --json
	restic_blobs before
	bes_chunks before

	log "gc: forget point 1"
	step restic-snapshots restic snapshots --json
	r1=$(json_get "$L/restic-snapshots.out" 'sorted(j, key=lambda s: s["time"])[0]["id"]')
	p1=$(json_get "$L/backup1-bes.out" 'j["point_id"]')
	[[ -n $r1 && -n $p1 ]] || die "could not find the first restic snapshot or BES point"
	evict "$RESTIC_REPOSITORY" "$RESTIC_CACHE_DIR"
	measure forget restic restic forget "$r1"
	# shellcheck disable=SC2046
	evict "$BES_REPO" $(disks_of "$FS/bes")
	measure forget bes "$BES" forget "$p1" --json
	bes_chunks forgotten

	log "gc: restic prune and bes gc (defaults)"
	evict "$RESTIC_REPOSITORY" "$RESTIC_CACHE_DIR"
	measure gc restic restic prune
	# shellcheck disable=SC2046
	evict "$BES_REPO" $(disks_of "$FS/bes")
	prof gc
	measure gc bes "${PROF[@]}" "$BES" gc --json
	restic_blobs after
	bes_chunks after
	if [[ $GC_FULL == 1 ]]; then
		log "gc: context: bes gc repacking every pack with more than 5% garbage"
		# shellcheck disable=SC2046
		evict "$BES_REPO" $(disks_of "$FS/bes")
		prof gc-full
		measure gc-full bes "${PROF[@]}" "$BES" gc --json --repack-below 95 --max-repack-percent 100
		bes_chunks full
	fi

	if [[ $CHECK == 1 ]]; then
		log "gc: checking both repositories"
		step restic-check restic check
		step bes-verify "$BES" verify --json
		log "  restic check and bes verify passed"
	fi
	log "gc: removing the corpus"
	rm -rf "$corpus"
}

# ------------------------------------------------------------------ replication
# repl_corpus DIR: REPL_MB MiB in 8 files: 4 of seeded random bytes, 4 of a
# 16-letter alphabet (~2:1 with zstd).
repl_corpus() {
	python3 - "$1" "$REPL_MB" "$SEED" <<'PY'
import os, random, sys
root, mb, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(root, exist_ok=True)
MiB = 1 << 20
each = mb * MiB // 8
letters = bytes((b"etaoinshrdlu .,\n" * 16)[i] for i in range(256))
total = 0
for i in range(8):
    rng = random.Random(seed * 31 + i)
    kind = "random" if i % 2 == 0 else "text"
    with open(os.path.join(root, "%s-%d.bin" % (kind, i // 2)), "wb") as f:
        left = each
        while left > 0:
            b = rng.randbytes(min(4 * MiB, left))
            f.write(b if kind == "random" else b.translate(letters))
            left -= len(b)
    total += each
print(8, total)
PY
}

# versitygw: a real S3 server for the S3 replica, built once (outside this
# module's graph) and cached like the tests do.
VGW_VERSION=v1.8.0
vgw_binary() {
	local cache=${BES_TOOLS_CACHE:-/var/cache/bes-tools} bin
	if [[ -n ${BES_VERSITYGW:-} ]]; then
		echo "$BES_VERSITYGW"
		return
	fi
	bin=$cache/versitygw-$VGW_VERSION/versitygw
	if [[ ! -x $bin ]]; then
		log "building versitygw $VGW_VERSION into $cache (once; a few minutes)"
		mkdir -p "$cache/versitygw-$VGW_VERSION" || die "cannot create $cache"
		(cd "$(mktemp -d)" && GOWORK=off GOFLAGS=-mod=mod GOBIN=$cache/versitygw-$VGW_VERSION \
			go install "github.com/versity/versitygw/cmd/versitygw@$VGW_VERSION") >"$L/vgw-build.log" 2>&1 ||
			die "building versitygw failed (see $L/vgw-build.log)"
	fi
	echo "$bin"
}

stop_vgw() { [[ -n $VGW_PID ]] && kill "$VGW_PID" 2>/dev/null && wait "$VGW_PID" 2>/dev/null; VGW_PID=; return 0; }

# start_vgw ROOT: start versitygw on a free 127.0.0.1 port; sets VGW_ENDPOINT.
start_vgw() {
	local bin port root=$1
	bin=$(vgw_binary)
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	mkdir -p "$root"
	AWS_ACCESS_KEY_ID=benchak$RANDOM AWS_SECRET_ACCESS_KEY=benchsk$RANDOM$RANDOM$RANDOM
	export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION=us-east-1
	ROOT_ACCESS_KEY=$AWS_ACCESS_KEY_ID ROOT_SECRET_KEY=$AWS_SECRET_ACCESS_KEY \
		"$bin" --port "127.0.0.1:$port" posix "$root" >"$L/vgw.log" 2>&1 &
	VGW_PID=$!
	VGW_ENDPOINT=127.0.0.1:$port
	for _ in $(seq 100); do
		if python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),0.2)' "$port" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	die "versitygw did not start (see $L/vgw.log)"
}

run_repl_s3() {
	local src=$1 point=$2 dst
	log "replicate: to an S3 replica (versitygw $VGW_VERSION on 127.0.0.1, posix backend in the scratch file system)"
	start_vgw "$FS/s3root"

	dst="s3:http://$VGW_ENDPOINT/bes-bench/replica"
	export BES_CACHE_DIR=$FS/s3state
	step repl-init-s3 "$BES" --repo "$dst" init --replica-of "$src"
	# shellcheck disable=SC2046
	evict "$src" $(disks_of "$src")
	measure replicate-s3 bes "$BES" --repo "$src" replicate --to "$dst" --json
	step repl-points-s3 "$BES" --repo "$dst" points --json
	[[ $(json_get "$L/repl-points-s3.out" 'len([p for p in j if p["id"] == "'"$point"'"])') == 1 ]] ||
		die "the S3 replica does not list point $point after bes replicate"
	if [[ $CHECK == 1 ]]; then
		step repl-verify-s3 "$BES" --repo "$dst" verify --json
		log "  bes verify of the S3 replica passed"
	fi
	meta repl_s3_bytes "$(bytes_of "$FS/s3root")"
	stop_vgw
}

# make_replica SRC DST DISKS_CSV: create the local replica.
make_replica() {
	step repl-init-dst "$BES" --repo "$2" init --disks "$3" --ec "$EC_K+$EC_M" --replica-of "$1"
}

run_repl() {
	local corpus=$FS/repl-corpus src=$FS/repl-src dst=$FS/repl-dst point stored
	log "replicate: building the corpus: $REPL_MB MiB in 8 files, half random, half compressible (seed $SEED)"
	step repl-corpus repl_corpus "$corpus"
	read -r files bytes <"$L/repl-corpus.out"
	meta repl_files "$files"
	meta repl_file_bytes "$bytes"
	# shellcheck disable=SC2046
	step repl-init-src "$BES" --repo "$src" init --disks "$(csv $(disks_of "$src"))" --ec "$EC_K+$EC_M"
	measure repl-backup bes "$BES" --repo "$src" backup "$corpus" --host bench --json
	point=$(json_get "$L/repl-backup-bes.out" 'j["point_id"]')
	step repl-points-src "$BES" --repo "$src" points --json
	stored=$(json_get "$L/repl-points-src.out" '[p for p in j if p["id"] == "'"$point"'"][0]["stored_bytes"]')
	meta repl_point "$point"
	meta repl_point_stored_bytes "$stored"
	log "  point ${point:0:8}: $((bytes / MiB)) MiB of files, $((stored / MiB)) MiB stored (before EC)"

	log "replicate: to a second local $EC_K+$EC_M disk set"
	# shellcheck disable=SC2046
	make_replica "$src" "$dst" "$(csv $(disks_of "$dst"))"
	# shellcheck disable=SC2046
	evict "$src" $(disks_of "$src")
	prof replicate
	measure replicate bes "${PROF[@]}" "$BES" --repo "$src" replicate --to "$dst" --json
	step repl-points-dst "$BES" --repo "$dst" points --json
	[[ $(json_get "$L/repl-points-dst.out" 'len([p for p in j if p["id"] == "'"$point"'"])') == 1 ]] ||
		die "the replica does not list point $point after bes replicate"
	if [[ $CHECK == 1 ]]; then
		step repl-verify-dst "$BES" --repo "$dst" verify --json
		log "  bes verify of the replica passed"
	fi
	# shellcheck disable=SC2046
	meta repl_dst_disk_bytes "$(bytes_of $(disks_of "$dst"))"
	rm -rf "$corpus"
	if [[ $REPL_S3 == 1 ]]; then
		run_repl_s3 "$src" "$point"
	fi
}

((GC_FILES > 0)) && run_gc
((REPL_MB > 0)) && run_repl
read -r LOAD_END _ </proc/loadavg
UPTIME_END=$(uptime)
T_END=$(date +%s)
log "load: $UPTIME_END"

# ------------------------------------------------------------------ report
BES_SHA=$(sha256sum "$BES" | cut -c1-16)
BES_REV=$(git -C "$(dirname "$BES")" rev-parse --short HEAD 2>/dev/null || echo unknown)
export BES RESTIC_VERSION BES_SHA BES_REV GC_FULL GC_FILES GC_DIRS DEL_PCT REPL_MB REPL_S3 FS_MODE COLD SEED EC_K EC_M \
	LOAD_START LOAD_END UPTIME_START UPTIME_END T_START T_END PROFILE_DIR
python3 - "$D/results.tsv" "$D/meta.tsv" "$L" "$OUT" <<'PY' || die "writing the report failed"
import datetime, json, os, re, sys
res_f, meta_f, logdir, out = sys.argv[1:5]
E = os.environ
K, M = int(E["EC_K"]), int(E["EC_M"])
MiB = 1 << 20

meta = {}
for line in open(meta_f):
    k, _, v = line.rstrip("\n").partition("\t")
    meta[k] = int(v) if re.fullmatch(r"-?\d+", v) else v
runs = {}
for line in open(res_f):
    ph, tool, wall, rss, usr, sys_, load = line.rstrip("\n").split("\t")
    runs[(ph, tool)] = {"wall_s": float(wall), "max_rss_mib": int(rss) / 1024.0, "user_s": float(usr),
                        "sys_s": float(sys_), "load1": float(load)}

def load_json(name):
    try:
        return json.load(open(os.path.join(logdir, name)))
    except (OSError, ValueError):
        return None

def prune_summary():
    """The summary lines of restic prune (what it kept, repacked, deleted)."""
    try:
        text = open(os.path.join(logdir, "gc-restic.out")).read()
    except OSError:
        return None
    keys = ("to repack", "this removes", "to delete", "total prune", "remaining", "unused size after prune")
    return {k: l.split(":", 1)[1].strip() for l in text.splitlines() for k in keys if l.strip().startswith(k + ":")}

gc_files = meta.get("gc_files")
bes_gc = load_json("gc-bes.out")
bes_full = load_json("gc-full-bes.out")
repl = load_json("replicate-bes.out")
for (ph, tool), c in runs.items():
    if ph in ("backup1", "backup2") and tool == "bes":
        c["bes_json"] = load_json("%s-bes.out" % ph)
if ("gc", "bes") in runs:
    runs[("gc", "bes")]["bes_json"] = bes_gc
if ("gc-full", "bes") in runs:
    runs[("gc-full", "bes")]["bes_json"] = bes_full
if ("gc", "restic") in runs:
    runs[("gc", "restic")]["prune_summary"] = prune_summary()
if ("replicate", "bes") in runs:
    runs[("replicate", "bes")]["bes_json"] = repl

def g(ph, tool, k="wall_s"):
    c = runs.get((ph, tool))
    return c[k] if c else None

def ratio(a, b):
    return a / b if a is not None and b else None

rows = []
def row(part, label, tool, ph, note=""):
    c = runs.get((ph, tool))
    if c:
        rows.append((part, label, tool, "%.2f" % c["wall_s"], "%.1f" % (c["user_s"] + c["sys_s"]),
                     "%.0f" % c["max_rss_mib"], "%.2f" % c["load1"], note))

if gc_files:
    left = gc_files - meta["gc_deleted"]
    for tool in ("restic", "bes"):
        row("gc", "backup, point 1", tool, "backup1", "%d files" % gc_files)
        row("gc", "backup, point 2", tool, "backup2", "%d files left" % left)
    for tool in ("restic", "bes"):
        row("gc", "forget point 1", tool, "forget")
    row("gc", "prune", "restic", "gc", "blobs %d -> %d, repo %.0f -> %.0f MiB" % (
        meta["restic_blobs_before"], meta["restic_blobs_after"], meta["restic_bytes_before"] / MiB, meta["restic_bytes_after"] / MiB))
    bpre = lambda t: meta["bes_disk_bytes_" + t] * K / (K + M) / MiB
    row("gc", "gc", "bes", "gc", "chunks %d -> %d, packs %.0f -> %.0f MiB before EC" % (
        meta["bes_chunks_before"], meta["bes_chunks_after"], bpre("before"), bpre("after")))
    row("gc", "gc --repack-below 95 (context)", "bes", "gc-full", "then packs %.0f MiB before EC" % bpre("full")
        if "bes_disk_bytes_full" in meta else "")
repl_mbps = repl_copied_mbps = None
if ("replicate", "bes") in runs:
    w = g("replicate", "bes")
    stored = meta["repl_point_stored_bytes"]
    repl_mbps = stored / 1e6 / w
    repl_copied_mbps = (repl or {}).get("bytes_copied", 0) / 1e6 / w
    bw = g("repl-backup", "bes")
    row("replicate", "backup (source point)", "bes", "repl-backup",
        "%.0f MiB files, %.0f MB/s" % (meta["repl_file_bytes"] / MiB, meta["repl_file_bytes"] / 1e6 / bw))
    row("replicate", "replicate", "bes", "replicate", "%.0f MiB stored, %.0f MB/s" % (stored / MiB, repl_mbps))
    if ("replicate-s3", "bes") in runs:
        s3w = g("replicate-s3", "bes")
        row("replicate", "replicate to S3", "bes", "replicate-s3", "%.0f MiB stored, %.0f MB/s" % (stored / MiB, stored / 1e6 / s3w))

checks = []
def check(label, value, target, ok, note=""):
    checks.append({"check": label, "value": value, "target": target, "pass": bool(ok), "note": note})

scale = ""
if gc_files:
    n = meta["bes_chunks_before"]
    if n < 1000000:
        scale = "scale: %d chunks, the target is for >= 1,000,000" % n
    w = g("gc", "bes")
    check("bes gc wall s", w, "< 60", w < 60, scale)
    check("bes gc peak RSS MiB", g("gc", "bes", "max_rss_mib"), "< 512", g("gc", "bes", "max_rss_mib") < 512, scale)
    x = ratio(g("gc", "restic"), w)
    cpu = ratio(g("gc", "restic", "user_s") + g("gc", "restic", "sys_s"), g("gc", "bes", "user_s") + g("gc", "bes", "sys_s"))
    check("prune time restic / gc time bes", x, ">= 3", x >= 3, "CPU time restic/bes %.2fx" % cpu)
    x = ratio(g("forget", "restic") + g("gc", "restic"), g("forget", "bes") + w)
    checks.append({"check": "forget+prune restic / forget+gc bes", "value": x, "target": "(context)", "pass": None,
                   "note": "BES counts references at forget time"})
    if ("gc-full", "bes") in runs:
        x = ratio(g("gc", "restic"), w + g("gc-full", "bes"))
        checks.append({"check": "prune restic / gc + gc --repack-below 95 bes", "value": x, "target": "(context)", "pass": None,
                       "note": "about the same space reclaimed by both tools"})
if repl_mbps is not None:
    check("replicate MB/s (stored bytes of the point)", repl_mbps, ">= 200", repl_mbps >= 200,
          "bytes copied / wall: %.0f MB/s" % repl_copied_mbps)

hdr = ("part", "phase", "tool", "wall s", "CPU s", "RSS MiB", "load1", "")
w = [max(len(str(r[i])) for r in [hdr] + rows) for i in range(len(hdr))]
fmt = lambda r: "  ".join((str(v).ljust(w[i]) if i < 3 or i == 7 else str(v).rjust(w[i])) for i, v in enumerate(r)).rstrip()
print()
if gc_files:
    print("gc corpus: %d files of 400-800 random bytes in %s dirs (%.0f MiB); %d (%s%%) deleted before point 2"
          % (gc_files, E["GC_DIRS"], meta["gc_file_bytes"] / MiB, meta["gc_deleted"], E["DEL_PCT"]))
    print("  bes chunks: %d before forget, %d unreferenced after it, %d after gc; restic blobs: %d (%d data) before, %d (%d data) after prune"
          % (meta["bes_chunks_before"], meta["bes_unreferenced_forgotten"], meta["bes_chunks_after"], meta["restic_blobs_before"],
             meta["restic_data_blobs_before"], meta["restic_blobs_after"], meta["restic_data_blobs_after"]))
    for label, j in (("bes gc", bes_gc), ("bes gc --repack-below 95 --max-repack-percent 100", bes_full)):
        if j:
            print("  %s: %d chunks swept, %d packs deleted, %d repacked (%.0f MiB copied); freed %.0f MiB before EC"
                  % (label, j["garbage_chunks"], j["packs_deleted"], j["packs_repacked"], j["bytes_repacked"] / MiB,
                     j["bytes_freed"] / MiB))
    ps = runs[("gc", "restic")].get("prune_summary") or {}
    if ps:
        print("  restic prune: to repack %s; to delete %s; remaining %s" % (ps.get("to repack", "?"), ps.get("to delete", "?"), ps.get("remaining", "?")))
if repl_mbps is not None:
    print("replicate: %d files, %.0f MiB (half random, half ~2:1 text), point stored %.0f MiB before EC; replica on a second local %d+%d disk set"
          % (meta["repl_files"], meta["repl_file_bytes"] / MiB, meta["repl_point_stored_bytes"] / MiB, K, M))
print("file system: %s; page cache: %s; load average %s at start, %s at end, %d cores"
      % ("fresh loop-mounted ext4" if E["FS_MODE"] == "loop" else "scratch directory",
         "repositories evicted before forget/prune/gc/replicate" if E["COLD"] == "1" else "warm", E["LOAD_START"], E["LOAD_END"], os.cpu_count()))
print("wall s and peak RSS from /usr/bin/time -v; CPU s = user + sys; load1 = 1-minute load average when the command started")
print(fmt(hdr))
for r in rows:
    print(fmt(r))
print()
cw = max(len(c["check"]) for c in checks)
for c in checks:
    v = c["value"]
    vs = "n/a" if v is None else ("%.3fx" % v if "/" in c["check"] and "MB/s" not in c["check"] else "%.1f" % v)
    verdict = "" if c["pass"] is None else ("PASS" if c["pass"] else "MISS")
    print("%s  %8s  target %-10s %-4s  %s" % (c["check"].ljust(cw), vs, c["target"], verdict, c["note"]))
total = int(E["T_END"]) - int(E["T_START"])
print("whole run: %d s (%.1f min)" % (total, total / 60))

doc = {
    "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "bes_binary": E["BES"], "bes_sha256_16": E["BES_SHA"], "bes_git_rev": E["BES_REV"], "restic_version": E["RESTIC_VERSION"],
    "machine": {"nproc": os.cpu_count(), "load1_start": float(E["LOAD_START"]), "load1_end": float(E["LOAD_END"]),
                "uptime_start": E["UPTIME_START"].strip(), "uptime_end": E["UPTIME_END"].strip()},
    "settings": {"gc_files": int(E["GC_FILES"]), "gc_dirs": int(E["GC_DIRS"]), "gc_delete_pct": int(E["DEL_PCT"]),
                 "gc_full": E["GC_FULL"] == "1", "repl_mb": int(E["REPL_MB"]), "repl_s3": E["REPL_S3"] == "1", "fs": E["FS_MODE"], "cold": E["COLD"] == "1",
                 "seed": int(E["SEED"]), "ec": "%d+%d" % (K, M), "cpu_profiles": E["PROFILE_DIR"] or None},
    "counts": meta,
    "phases": {"%s/%s" % k: v for k, v in runs.items()},
    "checks": checks,
    "total_seconds": total,
}
with open(out, "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")
print("results written to", out)
PY
