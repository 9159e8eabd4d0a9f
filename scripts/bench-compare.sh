#!/usr/bin/env bash
# bench-compare.sh BES_BINARY — run BES and restic side by side on the same
# reproducible corpus and print a table (and write JSON to $BENCH_OUT).
#
# Phases, each run for restic and then for BES and timed with /usr/bin/time -v:
#   1. initial backup      2. unchanged re-backup
#   3. re-backup after ~5% of the files changed (same changes for both tools)
#   4. full restore of the latest snapshot / point (verified against the corpus)
#
# Environment:
#   BENCH_DIR        scratch directory (default: mktemp -d /tmp/bes-bench.XXXXXX)
#   BENCH_KEEP=1     keep the scratch directory (corpus, repos, logs) at exit
#   BENCH_MIXED_MB   size of the generated mixed part of the corpus (default 1024)
#   BENCH_SEED       generator / mutation seed (default 20240601)
#   BENCH_ROUNDS     repeat everything with fresh repos, report the best time (default 1)
#   BENCH_OUT        JSON results file (default ./bench-compare.json)
#   BENCH_SRC_TREE   real source tree copied into the corpus (default $(go env GOROOT)/src)
#   BENCH_CMD_TIMEOUT  seconds before a measured command is killed (default 3600)
#   BENCH_RESTORE_COLD 1 (default): before each tool's restore, evict that
#                    tool's repository (and restic's cache) from the page cache
#                    (fadvise DONTNEED on those files only): both restore from
#                    a cold repository, as after a disaster. Otherwise restic,
#                    which writes its packs through the page cache, restores
#                    from memory while BES, which writes them with O_DIRECT,
#                    reads its from disk. 0: leave the page cache as it is
#   BENCH_RESTORE_FS fresh (default when root): each restore writes into a
#                    freshly made ext4 (mkfs.ext4 defaults, on a loop device
#                    with direct I/O) of its own; scratch: into the scratch
#                    directory itself
#
# Needs root for apt-get if restic, GNU time, bc or python3 are missing.
set -euo pipefail

PROG=bench-compare
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GEN="$SCRIPT_DIR/gen-corpus.py"

log() { printf '[%s %s] %s\n' "$PROG" "$(date +%H:%M:%S)" "$*" >&2; }
die() {
	printf '[%s %s] FAILED: %s\n' "$PROG" "$(date +%H:%M:%S)" "$*" >&2
	exit 1
}

usage() {
	sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
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

MIXED_MB=${BENCH_MIXED_MB:-1024}
SEED=${BENCH_SEED:-20240601}
ROUNDS=${BENCH_ROUNDS:-1}
CMD_TIMEOUT=${BENCH_CMD_TIMEOUT:-3600}
OUT=${BENCH_OUT:-./bench-compare.json}
[[ $OUT == /* ]] || OUT="$PWD/$OUT"
[[ $MIXED_MB =~ ^[0-9]+$ && $MIXED_MB -ge 1 ]] || die "BENCH_MIXED_MB must be a positive integer, got '$MIXED_MB'"
[[ $SEED =~ ^[0-9]+$ ]] || die "BENCH_SEED must be a non-negative integer, got '$SEED'"
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 ]] || die "BENCH_ROUNDS must be a positive integer, got '$ROUNDS'"
[[ $CMD_TIMEOUT =~ ^[0-9]+$ ]] || die "BENCH_CMD_TIMEOUT must be an integer (seconds), got '$CMD_TIMEOUT'"
[[ -f $GEN ]] || die "corpus generator $GEN is missing"

EC_K=4
EC_M=2
PASSWORD=bench-pw

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
if ((${#need[@]})); then apt_install "${need[@]}"; fi
for c in restic bc python3 tar du sync timeout; do
	command -v "$c" >/dev/null 2>&1 || die "required command '$c' is not available"
done
[[ -x /usr/bin/time ]] || die "GNU time (/usr/bin/time) is not available"
/usr/bin/time -v true 2>&1 | grep -q 'Maximum resident set size' || die "/usr/bin/time is not GNU time (no -v support)"
RESTIC_VERSION=$(restic version 2>/dev/null | head -n 1) || die "'restic version' failed"

if [[ -n ${BENCH_SRC_TREE:-} ]]; then
	SRC_TREE=$BENCH_SRC_TREE
else
	command -v go >/dev/null 2>&1 || die "go is not in PATH (needed for \$(go env GOROOT)/src); set BENCH_SRC_TREE to a source tree"
	SRC_TREE="$(go env GOROOT)/src"
fi
[[ -d $SRC_TREE ]] || die "source tree $SRC_TREE does not exist"

# ------------------------------------------------------------------ scratch dir
CREATED_D=0
if [[ -n ${BENCH_DIR:-} ]]; then
	[[ -e $BENCH_DIR ]] || { mkdir -p "$BENCH_DIR" && CREATED_D=1; } || die "cannot create BENCH_DIR $BENCH_DIR"
	D=$(cd "$BENCH_DIR" && pwd -P)
	# refuse to scribble over a directory that holds other things
	for x in "$D"/*; do
		[[ -e $x ]] || continue
		case "$(basename "$x")" in
		corpus | restic | restic-cache | bes | disk[1-9] | r-restic | r-bes | rfs-* | logs | undo | results.tsv | stored.tsv | sizes.tsv) ;;
		*) die "BENCH_DIR $D holds '$(basename "$x")', which this script did not make; use an empty or new directory" ;;
		esac
	done
else
	D=$(mktemp -d /tmp/bes-bench.XXXXXX) || die "mktemp failed"
	D=$(cd "$D" && pwd -P)
	CREATED_D=1
fi
CORPUS=$D/corpus
L=$D/logs
DISKS=()
for ((i = 1; i <= EC_K + EC_M; i++)); do DISKS+=("$D/disk$i"); done
DISKS_CSV=$(
	IFS=,
	echo "${DISKS[*]}"
)

cleanup() {
	local rc=$?
	drop_target_fs
	if [[ ${BENCH_KEEP:-0} == 1 ]]; then
		log "keeping scratch directory $D (BENCH_KEEP=1)"
		return $rc
	fi
	if ((rc != 0)) && [[ -d $D/logs ]]; then
		rm -rf "$D.logs" && cp -a "$D/logs" "$D.logs" && log "logs of the failed run copied to $D.logs"
	fi
	if [[ $CREATED_D == 1 ]]; then
		rm -rf "$D"
	else
		rm -rf "$D"/corpus "$D"/restic "$D"/restic-cache "$D"/bes "$D"/disk[1-9] "$D"/r-restic "$D"/r-bes \
			"$D"/logs "$D"/undo "$D"/results.tsv "$D"/stored.tsv "$D"/sizes.tsv
	fi
	return $rc
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ------------------------------------------------------------------ restore targets
# Each restore gets a freshly made ext4 of its own, so that both tools find
# the same clean file system: on an ext4 without a journal (some VM root
# file systems) the kernel skips every inode deleted in the last hours when
# it allocates one, which made the same restore cost 1 to 4.5 s of system
# time depending on what earlier runs had deleted.
RESTORE_COLD=${BENCH_RESTORE_COLD:-1}
[[ $RESTORE_COLD == 0 || $RESTORE_COLD == 1 ]] || die "BENCH_RESTORE_COLD must be 0 or 1, got '$RESTORE_COLD'"
# evict PATH...: drop these files' pages from the page cache.
evict() {
	[[ $RESTORE_COLD == 1 ]] || return 0
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
RESTORE_FS=${BENCH_RESTORE_FS:-fresh}
if [[ $RESTORE_FS == fresh ]] && { [[ $(id -u) -ne 0 ]] || ! command -v mkfs.ext4 >/dev/null || ! command -v losetup >/dev/null; }; then
	RESTORE_FS=scratch
fi
[[ $RESTORE_FS == fresh || $RESTORE_FS == scratch ]] || die "BENCH_RESTORE_FS must be fresh or scratch, got '$RESTORE_FS'"
# target_fs NAME: print a directory on a fresh file system (or in the scratch dir).
target_fs() {
	local img=$D/rfs-$1.img mnt=$D/rfs-$1
	if [[ $RESTORE_FS == scratch ]]; then
		echo "$D/r-$1"
		return
	fi
	drop_target_fs "$1"
	truncate -s $((CORPUS_BYTES * 2 + (1 << 30))) "$img" || die "truncate $img"
	mkfs.ext4 -q -F "$img" >"$L/mkfs-$1.log" 2>&1 || die "mkfs.ext4 $img failed (see $L/mkfs-$1.log)"
	# --direct-io: the loop device writes through to the disk like a real
	# one, instead of caching everything a second time for its backing file.
	local dev
	dev=$(losetup -f --show --direct-io=on "$img") || die "losetup $img failed"
	mkdir -p "$mnt" && mount "$dev" "$mnt" || die "mounting $img failed"
	echo "$mnt/r"
}
# drop_target_fs [NAME]: unmount and delete one (or every) restore file system.
drop_target_fs() {
	local m
	for m in "$D"/rfs-${1:-*}; do
		[[ -d $m ]] || continue
		mountpoint -q "$m" && umount "$m"
		[[ -f $m.img ]] && losetup -j "$m.img" | cut -d: -f1 | xargs -r losetup -d
		rm -rf "$m" "$m.img"
	done
	return 0
}

mkdir -p "$L"
: >"$D/results.tsv"
: >"$D/stored.tsv"
: >"$D/sizes.tsv"

# A clean, fixed environment for both tools.
unset RESTIC_PASSWORD_FILE RESTIC_PASSWORD_COMMAND RESTIC_KEY_HINT RESTIC_COMPRESSION RESTIC_PACK_SIZE \
	RESTIC_REPOSITORY_FILE RESTIC_HOST BES_PASSWORD_FILE BES_KEY_FILE
export RESTIC_REPOSITORY=$D/restic RESTIC_PASSWORD=$PASSWORD RESTIC_CACHE_DIR=$D/restic-cache
export BES_REPO=$D/bes BES_PASSWORD=$PASSWORD

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
		case "$rc" in
		3) [[ ${2:-} == backup ]] && echo "(exit 3 = partial backup: committed, but some files could not be read; a failure here)" ;;
		124) echo "(killed after BENCH_CMD_TIMEOUT=${CMD_TIMEOUT}s)" ;;
		esac
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
	"$@" >"$L/$name.out" 2>"$L/$name.err" || rc=$?
	if ((rc != 0)); then
		show_failure "$name" "$rc" "$@"
		die "step '$name' failed"
	fi
}

# measure ROUND PHASE TOOL CMD... : run CMD under /usr/bin/time -v and append
# "round phase tool wall_s maxrss_kib user_s sys_s" to results.tsv.
measure() {
	local round=$1 phase=$2 tool=$3
	shift 3
	local name="r${round}-${phase}-${tool}" rc=0 t0 t1 wall rss usr sys
	sync
	t0=$(date +%s.%N)
	timeout --kill-after=30 "$CMD_TIMEOUT" /usr/bin/time -v -o "$L/$name.time" "$@" >"$L/$name.out" 2>"$L/$name.err" || rc=$?
	t1=$(date +%s.%N)
	if ((rc != 0)); then
		show_failure "$name" "$rc" "$@"
		die "$tool $phase failed (round $round)"
	fi
	wall=$(echo "$t1 - $t0" | bc -l)
	rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$L/$name.time")
	usr=$(awk -F': ' '/User time \(seconds\)/ {print $2}' "$L/$name.time")
	sys=$(awk -F': ' '/System time \(seconds\)/ {print $2}' "$L/$name.time")
	[[ -n $rss && -n $usr && -n $sys ]] || die "could not parse /usr/bin/time output $L/$name.time"
	printf '%s\t%s\t%s\t%.3f\t%s\t%s\t%s\n' "$round" "$phase" "$tool" "$wall" "$rss" "$usr" "$sys" >>"$D/results.tsv"
	log "  $tool $phase: $(printf '%.2f' "$wall") s, peak RSS $((rss / 1024)) MiB"
}

warm() { tar cf - -C "$D" corpus | cat >/dev/null || die "warming the page cache (tar of $CORPUS) failed"; }
bytes_of() { du -sb "$@" | awk '{s += $1} END {print s + 0}'; }

# digest_check TREE WANT LABEL : compare the digest of TREE with WANT.
digest_check() {
	local tree=$1 want=$2 label=$3 got
	[[ -d $tree ]] || {
		echo "contents of the restore target (3 levels):" >&2
		find "$(dirname "$tree")" -maxdepth 3 2>/dev/null | head -n 20 >&2 || true
		die "$label: expected restored corpus at $tree, not there"
	}
	got=$(python3 "$GEN" digest "$tree") || die "$label: digest of $tree failed"
	if [[ $got != "$want" ]]; then
		die "$label: restored tree differs from the corpus: corpus '$want' (sha256 files bytes), restored '$got'"
	fi
	log "  $label: restored tree matches the corpus"
}

# ------------------------------------------------------------------ corpus
log "scratch directory $D"
log "building corpus: copy of $SRC_TREE + ${MIXED_MB} MiB mixed files (seed $SEED)"
mkdir -p "$CORPUS"
step copy-src cp -a "$SRC_TREE" "$CORPUS/src"
step gen-corpus python3 "$GEN" gen "$CORPUS/mixed" --mb "$MIXED_MB" --seed "$SEED"
log "  mixed: $(cat "$L/gen-corpus.out")"
CORPUS_FILES=$(find "$CORPUS" -type f | wc -l)
CORPUS_BYTES=$(bytes_of "$CORPUS")
log "corpus: $CORPUS_FILES files, $CORPUS_BYTES bytes (apparent size)"

# ------------------------------------------------------------------ rounds
for ((round = 1; round <= ROUNDS; round++)); do
	log "round $round of $ROUNDS"
	rm -rf "$D/restic" "$D/restic-cache" "$D/bes" "${DISKS[@]}" "$D/r-restic" "$D/r-bes"
	step "r$round-restic-init" restic init
	step "r$round-bes-init" "$BES" init --disks "$DISKS_CSV" --ec "$EC_K+$EC_M"

	size_before=$(bytes_of "$CORPUS")
	echo -e "$round\tinitial\t$size_before" >>"$D/sizes.tsv"

	log " phase: initial backup"
	warm
	measure "$round" initial restic restic backup "$CORPUS"
	warm
	measure "$round" initial bes "$BES" backup "$CORPUS" --host bench

	log " phase: unchanged re-backup"
	warm
	measure "$round" unchanged restic restic backup "$CORPUS"
	warm
	measure "$round" unchanged bes "$BES" backup "$CORPUS" --host bench

	log " phase: 5%-changed re-backup"
	rm -rf "$D/undo"
	step "r$round-mutate" python3 "$GEN" mutate "$CORPUS" --undo "$D/undo" --seed "$SEED" --fraction 0.05
	log "  changed: $(cat "$L/r$round-mutate.out")"
	size_after=$(bytes_of "$CORPUS")
	echo -e "$round\tchanged\t$size_after" >>"$D/sizes.tsv"
	echo -e "$round\trestore\t$size_after" >>"$D/sizes.tsv"
	echo -e "$round\tunchanged\t$size_before" >>"$D/sizes.tsv"
	warm
	measure "$round" changed restic restic backup "$CORPUS"
	warm
	measure "$round" changed bes "$BES" backup "$CORPUS" --host bench

	step "r$round-digest" python3 "$GEN" digest "$CORPUS"
	want=$(cat "$L/r$round-digest.out")

	# Neither restore may follow the deletion of the other's output in the
	# same file system (see target_fs); with BENCH_RESTORE_FS=scratch both
	# outputs are deleted only after both restores.
	log " phase: full restore (into $RESTORE_FS file systems)"
	rm -rf "$D/r-restic" "$D/r-bes"
	rtarget=$(target_fs restic)
	sync
	evict "$D/restic" "$D/restic-cache"
	measure "$round" restore restic restic restore latest --target "$rtarget"
	digest_check "$rtarget$CORPUS" "$want" "restic restore"

	step "r$round-bes-points" "$BES" points --json
	point=$(python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["id"])' <"$L/r$round-bes-points.out") ||
		die "could not read the latest point id from 'bes points --json' (output in $L/r$round-bes-points.out)"
	[[ -n $point ]] || die "'bes points --json' gave an empty point id"
	btarget=$(target_fs bes)
	sync
	evict "$D/bes" "$D"/disk*
	measure "$round" restore bes "$BES" restore "$point" --target "$btarget"
	digest_check "$btarget$CORPUS" "$want" "bes restore"
	rm -rf "$D/r-restic" "$D/r-bes"
	drop_target_fs

	restic_bytes=$(bytes_of "$D/restic")
	bes_repo_bytes=$(bytes_of "$D/bes")
	bes_disk_bytes=$(bytes_of "${DISKS[@]}")
	printf '%s\t%s\t%s\t%s\n' "$round" "$restic_bytes" "$bes_repo_bytes" "$bes_disk_bytes" >>"$D/stored.tsv"

	step "r$round-undo" python3 "$GEN" undo "$CORPUS" --undo "$D/undo"
done

# ------------------------------------------------------------------ report
BES_REV=$(git -C "$(dirname "$BES")" rev-parse --short HEAD 2>/dev/null || echo unknown)
python3 - "$D/results.tsv" "$D/stored.tsv" "$D/sizes.tsv" "$OUT" <<PY || die "writing the report failed"
import json, sys, datetime
res_f, stored_f, sizes_f, out = sys.argv[1:5]
K, M = $EC_K, $EC_M
phases = [("initial", "initial backup"), ("unchanged", "unchanged re-backup"),
          ("changed", "5%-changed re-backup"), ("restore", "full restore")]
runs = {}
for line in open(res_f):
    r, ph, tool, wall, rss, usr, sys_ = line.rstrip("\n").split("\t")
    runs.setdefault((ph, tool), []).append(
        {"round": int(r), "wall_s": float(wall), "max_rss_kib": int(rss), "user_s": float(usr), "sys_s": float(sys_)})
sizes = {}
for line in open(sizes_f):
    r, ph, b = line.split()
    sizes[ph] = int(b)  # identical every round: the corpus is reset between rounds
stored = [dict(zip(["round", "restic", "bes_repo", "bes_disks"], map(int, l.split()))) for l in open(stored_f)]
last = stored[-1]

def cell(ph, tool):
    rs = runs[(ph, tool)]
    best = min(rs, key=lambda x: x["wall_s"])
    return {"best_wall_s": best["wall_s"], "best_user_s": best["user_s"], "best_sys_s": best["sys_s"],
            "max_rss_mib": max(x["max_rss_kib"] for x in rs) / 1024.0,
            "mb_per_s": sizes[ph] / 1e6 / best["wall_s"] if best["wall_s"] > 0 else None,
            "rounds": rs}

table = []
hdr = ("phase", "restic s", "bes s", "restic MB/s", "bes MB/s", "speedup(restic/bes time)", "restic RSS MiB", "bes RSS MiB")
rows = []
for ph, label in phases:
    a, b = cell(ph, "restic"), cell(ph, "bes")
    sp = a["best_wall_s"] / b["best_wall_s"] if b["best_wall_s"] > 0 else float("inf")
    table.append({"phase": ph, "label": label, "corpus_bytes": sizes[ph], "restic": a, "bes": b, "speedup": sp})
    rows.append((label, "%.2f" % a["best_wall_s"], "%.2f" % b["best_wall_s"], "%.1f" % a["mb_per_s"], "%.1f" % b["mb_per_s"],
                 "%.2fx" % sp, "%.0f" % a["max_rss_mib"], "%.0f" % b["max_rss_mib"]))
w = [max(len(str(r[i])) for r in [hdr] + rows) for i in range(len(hdr))]
fmt = lambda r: "  ".join((str(x).ljust(w[i]) if i == 0 else str(x).rjust(w[i])) for i, x in enumerate(r))
MiB = 1 << 20
bes_total = last["bes_repo"] + last["bes_disks"]
bes_pre_ec = last["bes_disks"] * K / (K + M) + last["bes_repo"]
ratio = bes_pre_ec / last["restic"] if last["restic"] else float("nan")
print()
print("corpus: %d bytes (%.1f MiB) initially, %d after the 5%% change; rounds: %d (best time per cell, peak RSS max over rounds)"
      % (sizes["initial"], sizes["initial"] / MiB, sizes["changed"], len(stored)))
print("restores write into: %s" % ("a fresh ext4 each (mkfs.ext4 defaults, loop device with direct I/O)" if "$RESTORE_FS" == "fresh" else "the scratch directory"))
print("restores read from: %s" % ("a cold repository (its files evicted from the page cache first)" if "$RESTORE_COLD" == "1" else "whatever the page cache holds"))
print(fmt(hdr))
for r in rows:
    print(fmt(r))
print("stored bytes: restic %.1f MiB, bes %.1f MiB (with EC %d+%d parity), bes before EC %.1f MiB, ratio bes-before-EC/restic = %.3f"
      % (last["restic"] / MiB, bes_total / MiB, K, M, bes_pre_ec / MiB, ratio))
print("  (bes = repository dir %.1f MiB + %d disk dirs %.1f MiB; before EC = disk bytes * %d/%d + repository dir; after all three backups)"
      % (last["bes_repo"] / MiB, K + M, last["bes_disks"] / MiB, K, K + M))
doc = {
    "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "restic_version": "$RESTIC_VERSION", "bes_binary": "$BES", "bes_git_rev": "$BES_REV",
    "machine": {"nproc": $(nproc), "mem_total_kib": $(awk '/MemTotal/ {print $2}' /proc/meminfo)},
    "corpus": {"src_tree": "$SRC_TREE", "mixed_mb": $MIXED_MB, "seed": $SEED, "files": $CORPUS_FILES,
               "bytes_initial": sizes["initial"], "bytes_after_change": sizes["changed"]},
    "ec": "%d+%d" % (K, M), "rounds": len(stored), "restore_fs": "$RESTORE_FS", "restore_cold": "$RESTORE_COLD" == "1",
    "phases": table,
    "stored": {"restic_bytes": last["restic"], "bes_repo_bytes": last["bes_repo"], "bes_disk_bytes": last["bes_disks"],
               "bes_total_bytes": bes_total, "bes_before_ec_bytes": int(bes_pre_ec),
               "ratio_bes_before_ec_over_restic": ratio, "per_round": stored},
}
with open(out, "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")
print("results written to", out)
PY
