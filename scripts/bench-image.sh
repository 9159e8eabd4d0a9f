#!/usr/bin/env bash
# bench-image.sh BES_BINARY — block-level disk images: BES against restic
# (--stdin), partclone+zstd and dd+zstd on the same reproducible disk image;
# prints a table with the spec's targets (and writes JSON to $BENCH_OUT).
#
# Corpus: a sparse GPT disk image (BENCH_IMAGE_GB) with an ext4 partition about
# half full of real files (Go's GOROOT twice, a system library or binary dir,
# seeded random data) and a FAT32 partition with some files. Phases, each
# timed with /usr/bin/time -v (wall time, peak RSS) and with the bytes stored:
#   1. full image backup: BES, restic --stdin, partclone+zstd, dd+zstd
#   2. incremental after ~5% of the files changed: BES, restic
#   3. restore to a file: dd (sparse copy, the disk-speed reference), restic
#      dump, BES (verified: e2fsck -fn, fsck.fat -n, cmp / file digests)
#   4. memory: the image grown to BENCH_BIG_GB (sparse), BES full backup
#
# Environment:
#   BENCH_DIR        scratch directory (default: mktemp -d /tmp/bes-bench-img.XXXXXX);
#                    with BENCH_KEEP=1 the built image is reused by the next run
#   BENCH_KEEP=1     keep the scratch directory (image, repos, logs) at exit
#   BENCH_IMAGE_GB   disk size in GiB (default 4; 1 for a quick run)
#   BENCH_BIG_GB     disk size of the memory phase (default 4 x BENCH_IMAGE_GB)
#   BENCH_SEED       random data / change seed (default 20240601)
#   BENCH_ROUNDS     repeat phases 1-4 from the pristine image, report the best time (default 1)
#   BENCH_OUT        JSON results file (default ./bench-image.json)
#   BENCH_GOROOT     tree copied twice into ext4 (default $(go env GOROOT))
#   BENCH_CMD_TIMEOUT  seconds before a measured command is killed (default 3600)
#   BENCH_RESTORE_SYNC 0 (default): restore times end when each tool exits
#                    (none of them flushes a file target: BES, like dd and
#                    restic, leaves that to writeback unless --sync); 1: they
#                    include a `sync FILE` after every tool
#
# Needs root (loop devices, mount); installs missing tools with apt-get.
set -euo pipefail

PROG=bench-image
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GEN="$SCRIPT_DIR/gen-corpus.py"

log() { printf '[%s %s] %s\n' "$PROG" "$(date +%H:%M:%S)" "$*" >&2; }
die() {
	printf '[%s %s] FAILED: %s\n' "$PROG" "$(date +%H:%M:%S)" "$*" >&2
	exit 1
}

usage() {
	sed -n '2,29p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
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

GB=${BENCH_IMAGE_GB:-4}
[[ $GB =~ ^[0-9]+$ && $GB -ge 1 ]] || die "BENCH_IMAGE_GB must be a positive integer, got '$GB'"
BIG_GB=${BENCH_BIG_GB:-$((GB * 4))}
SEED=${BENCH_SEED:-20240601}
ROUNDS=${BENCH_ROUNDS:-1}
CMD_TIMEOUT=${BENCH_CMD_TIMEOUT:-3600}
RESTORE_SYNC=${BENCH_RESTORE_SYNC:-0}
OUT=${BENCH_OUT:-./bench-image.json}
[[ $OUT == /* ]] || OUT="$PWD/$OUT"
[[ $BIG_GB =~ ^[0-9]+$ && $BIG_GB -gt $GB ]] || die "BENCH_BIG_GB must be an integer above BENCH_IMAGE_GB ($GB), got '$BIG_GB'"
[[ $SEED =~ ^[0-9]+$ ]] || die "BENCH_SEED must be a non-negative integer, got '$SEED'"
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 ]] || die "BENCH_ROUNDS must be a positive integer, got '$ROUNDS'"
[[ $CMD_TIMEOUT =~ ^[0-9]+$ ]] || die "BENCH_CMD_TIMEOUT must be an integer (seconds), got '$CMD_TIMEOUT'"
[[ $RESTORE_SYNC == 0 || $RESTORE_SYNC == 1 ]] || die "BENCH_RESTORE_SYNC must be 0 or 1, got '$RESTORE_SYNC'"
[[ -f $GEN ]] || die "tree digest tool $GEN is missing"
[[ $(id -u) -eq 0 ]] || die "must run as root (loop devices, mount)"

EC_K=4
EC_M=2
PASSWORD=bench-pw
MiB=$((1 << 20))

# Disk layout (MiB): 1 MiB for the GPT, ext4, FAT32, then free space (1/8 of
# the disk) up to the backup GPT.
FAT_MIB=$((GB >= 4 ? 512 : 256))
EXT4_MIB=$((GB * 1024 - FAT_MIB - GB * 128))
EXT4_OFF=$MiB
EXT4_SIZE=$((EXT4_MIB * MiB))
FAT_OFF=$((EXT4_OFF + EXT4_SIZE))
FAT_SIZE=$((FAT_MIB * MiB))
DISK_BYTES=$((GB << 30))
BIG_BYTES=$((BIG_GB << 30))
RAND_MIB=$((GB * 300 / 4))  # seeded random files in ext4
INCR_MIB=$((GB * 100 / 4))  # random file added by the change
FATRAND_MIB=$((FAT_MIB / 8)) # seeded random files in FAT

# ------------------------------------------------------------------ tools
apt_install() {
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
command -v partclone.ext4 >/dev/null 2>&1 || need+=(partclone)
command -v zstd >/dev/null 2>&1 || need+=(zstd)
command -v sfdisk >/dev/null 2>&1 || need+=(fdisk)
command -v sgdisk >/dev/null 2>&1 || need+=(gdisk)
command -v mkfs.ext4 >/dev/null 2>&1 || need+=(e2fsprogs)
{ command -v mkfs.vfat && command -v fsck.fat; } >/dev/null 2>&1 || need+=(dosfstools)
command -v mcopy >/dev/null 2>&1 || need+=(mtools)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if ((${#need[@]})); then apt_install "${need[@]}"; fi
for c in restic bc python3 partclone.ext4 zstd sfdisk sgdisk mkfs.ext4 e2fsck mkfs.vfat fsck.fat mcopy openssl \
	losetup mount umount mountpoint cmp du sync timeout dd truncate; do
	command -v "$c" >/dev/null 2>&1 || die "required command '$c' is not available"
done
PC_FAT=$(command -v partclone.fat32 || command -v partclone.vfat || true)
[[ -n $PC_FAT ]] || die "neither partclone.fat32 nor partclone.vfat is available"
[[ -x /usr/bin/time ]] || die "GNU time (/usr/bin/time) is not available"
/usr/bin/time -v true 2>&1 | grep -q 'Maximum resident set size' || die "/usr/bin/time is not GNU time (no -v support)"
RESTIC_VERSION=$(restic version 2>/dev/null | head -n 1) || die "'restic version' failed"
PARTCLONE_VERSION=$(partclone.ext4 -v 2>&1 | head -n 1 || true)
ZSTD_VERSION=$(zstd -V 2>/dev/null | head -n 1 || true)

if [[ -n ${BENCH_GOROOT:-} ]]; then
	GOROOT_DIR=$BENCH_GOROOT
else
	command -v go >/dev/null 2>&1 || die "go is not in PATH (needed for \$(go env GOROOT)); set BENCH_GOROOT to a tree"
	GOROOT_DIR=$(go env GOROOT)
fi
[[ -d $GOROOT_DIR ]] || die "tree $GOROOT_DIR does not exist"
LIB_DIR=
for x in /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib64; do
	[[ -d $x ]] && { LIB_DIR=$x && break; }
done

# ------------------------------------------------------------------ scratch dir
OURS='^(corpus|work\.img|out|mnt|restic|restic-cache|bes|disk[1-9]|bes-big|bigdisk[1-9]|logs|results\.tsv|stored\.tsv|meta\.tsv)$'
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
	D=$(mktemp -d /tmp/bes-bench-img.XXXXXX) || die "mktemp failed"
	D=$(cd "$D" && pwd -P)
	CREATED_D=1
fi
CORPUS=$D/corpus
BASE=$CORPUS/base.img
WORK=$D/work.img
O=$D/out
MNT=$D/mnt
L=$D/logs
DISKS=()
BIGDISKS=()
for ((i = 1; i <= EC_K + EC_M; i++)); do
	DISKS+=("$D/disk$i")
	BIGDISKS+=("$D/bigdisk$i")
done
csv() {
	local IFS=,
	echo "$*"
}

# ------------------------------------------------------------------ loop devices and mounts
LOOPS=()
MOUNTS=()
LOOP=
# loop_attach IMG OFFSET SIZE [-r]: attach a loop device to a byte range of IMG; sets $LOOP.
loop_attach() {
	LOOP=$(losetup -f --show ${4:+"$4"} -o "$2" --sizelimit "$3" "$1") || die "losetup of $1 at offset $2 failed"
	LOOPS+=("$LOOP")
}
loop_detach() {
	local dev=$1 i
	losetup -d "$dev" || die "losetup -d $dev failed"
	for i in "${!LOOPS[@]}"; do [[ ${LOOPS[$i]} == "$dev" ]] && unset 'LOOPS[i]'; done
	return 0
}
# mount_at DEV DIR [OPTIONS]
mount_at() {
	mkdir -p "$2"
	MOUNTS+=("$2")
	mount ${3:+-o "$3"} "$1" "$2" || die "mounting $1 on $2 failed"
}
umount_at() {
	local dir=$1 i
	umount "$dir" || die "umount $dir failed"
	for i in "${!MOUNTS[@]}"; do [[ ${MOUNTS[$i]} == "$dir" ]] && unset 'MOUNTS[i]'; done
	return 0
}
# release_all: unmount and detach everything this script set up, whatever state it is in.
release_all() {
	local i m dev f
	for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
		m=${MOUNTS[$i]:-}
		[[ -n $m ]] && mountpoint -q "$m" && { umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; }
	done
	for m in "$MNT"/*; do
		[[ -d $m ]] && mountpoint -q "$m" && { umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; }
	done
	MOUNTS=()
	for dev in "${LOOPS[@]}"; do losetup -d "$dev" 2>/dev/null || true; done
	LOOPS=()
	# loop devices still backed by a file of ours (e.g. attached just before a failure)
	while IFS= read -r f; do
		losetup -j "$f" 2>/dev/null | cut -d: -f1 | while IFS= read -r dev; do
			[[ -n $dev ]] && { losetup -d "$dev" 2>/dev/null || true; }
		done
	done < <(find "$D" -maxdepth 2 -name '*.img' -type f 2>/dev/null)
	return 0
}

cleanup() {
	local rc=$?
	release_all
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
		rm -rf "$CORPUS" "$WORK" "$O" "$MNT" "$D"/restic "$D"/restic-cache "$D"/bes "$D"/disk[1-9] "$D"/bes-big \
			"$D"/bigdisk[1-9] "$L" "$D"/results.tsv "$D"/stored.tsv "$D"/meta.tsv
	fi
	return $rc
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

mkdir -p "$L" "$O" "$MNT"
: >"$D/results.tsv"
: >"$D/stored.tsv"
: >"$D/meta.tsv"
meta() { printf '%s\t%s\n' "$1" "$2" >>"$D/meta.tsv"; }

# A clean, fixed environment for every tool.
unset RESTIC_PASSWORD_FILE RESTIC_PASSWORD_COMMAND RESTIC_KEY_HINT RESTIC_COMPRESSION RESTIC_PACK_SIZE \
	RESTIC_REPOSITORY_FILE RESTIC_HOST BES_PASSWORD_FILE BES_KEY_FILE
export RESTIC_REPOSITORY=$D/restic RESTIC_PASSWORD=$PASSWORD RESTIC_CACHE_DIR=$D/restic-cache
export BES_REPO=$D/bes BES_PASSWORD=$PASSWORD MTOOLS_SKIP_CHECK=1

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

# measure ROUND PHASE TOOL CMD... : run CMD under /usr/bin/time -v and append
# "round phase tool wall_s maxrss_kib user_s sys_s load1" to results.tsv.
# Pipelines run under sh -c: GNU time then reports the largest process's RSS.
measure() {
	local round=$1 phase=$2 tool=$3
	shift 3
	local name="r${round}-${phase}-${tool}" rc=0 t0 t1 wall rss usr sys load1 _rest
	sync
	read -r load1 _rest </proc/loadavg
	t0=$(date +%s.%N)
	timeout --kill-after=30 "$CMD_TIMEOUT" /usr/bin/time -v -o "$L/$name.time" "$@" >"$L/$name.out" 2>"$L/$name.err" </dev/null || rc=$?
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
	printf '%s\t%s\t%s\t%.3f\t%s\t%s\t%s\t%s\n' "$round" "$phase" "$tool" "$wall" "$rss" "$usr" "$sys" "$load1" >>"$D/results.tsv"
	log "  $tool $phase: $(printf '%.2f' "$wall") s, peak RSS $((rss / 1024)) MiB (load $load1)"
}

# stored ROUND PHASE TOOL BYTES [EXTRA]: record the bytes a measured command stored / added / wrote.
stored() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${5:-0}" >>"$D/stored.tsv"; }

bytes_of() { du -sb "$@" | awk '{s += $1} END {print s + 0}'; }
alloc_of() { du -B1 "$1" | awk '{print $1}'; }
# BES bytes before erasure coding: disk bytes * K/(K+M), as the acceptance check counts them.
pre_ec() { echo $(($1 * EC_K / (EC_K + EC_M))); }
warm() { cat "$1" >/dev/null || die "warming the page cache ($1) failed"; }
# warm_data FILE: read only the data extents of a sparse file (SEEK_DATA/SEEK_HOLE).
warm_data() {
	python3 - "$1" <<'PY' || die "warming the page cache ($1) failed"
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
end = os.fstat(fd).st_size
pos = 0
while pos < end:
    try:
        pos = os.lseek(fd, pos, os.SEEK_DATA)
    except OSError:
        break
    hole = os.lseek(fd, pos, os.SEEK_HOLE)
    while pos < hole:
        b = os.pread(fd, min(8 << 20, hole - pos), pos)
        if not b:
            break
        pos += len(b)
PY
}
# rand_file TAG MIB FILE: MIB MiB of reproducible random bytes (AES-256-CTR of zeros,
# key from the seed and TAG).
rand_file() {
	local key
	key=$(printf 'bes-bench-image/%s/%s' "$SEED" "$1" | sha256sum | cut -c1-64)
	head -c $(($2 * MiB)) /dev/zero |
		openssl enc -aes-256-ctr -nosalt -K "$key" -iv 00000000000000000000000000000000 >"$3" ||
		die "generating random file $3 failed"
}
latest_point() { # latest_point NAME: id of the last point in 'bes points --json'
	step "$1" "$BES" points --json
	python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["id"])' <"$L/$1.out" ||
		die "could not read the latest point id from 'bes points --json' (output in $L/$1.out)"
}

# ------------------------------------------------------------------ corpus
# du -sk of a tree (KiB)
kib_of() { du -sk "$1" | awk '{print $1}'; }

build_corpus() {
	local img=$CORPUS/build.img budget used k src name picked=() go_files all_files
	rm -rf "$CORPUS"
	mkdir -p "$CORPUS"
	truncate -s "$DISK_BYTES" "$img" || die "truncate $img"
	# (not via step: that gives commands /dev/null as stdin)
	sfdisk -q "$img" >"$L/sfdisk.out" 2>"$L/sfdisk.err" <<EOF || { show_failure sfdisk 1 sfdisk "$img"; die "sfdisk failed"; }
label: gpt
label-id: 5EB1C0DE-0000-4000-8000-00000000D15C
unit: sectors
first-lba: 2048
start=$((EXT4_OFF / 512)), size=$((EXT4_SIZE / 512)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=5EB1C0DE-0000-4000-8000-000000000001, name="bench-ext4"
start=$((FAT_OFF / 512)), size=$((FAT_SIZE / 512)), type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, uuid=5EB1C0DE-0000-4000-8000-000000000002, name="bench-fat32"
EOF

	# ext4: GOROOT twice, then a library (or binary) dir if it fits, plus random files,
	# aiming at about half of the partition.
	loop_attach "$img" "$EXT4_OFF" "$EXT4_SIZE"
	step mkfs-ext4 mkfs.ext4 -q -F -L bench-ext4 -U 5eb1c0de-0000-4000-8000-0000000000e4 \
		-E hash_seed=5eb1c0de-0000-4000-8000-00000000005e,lazy_itable_init=0,lazy_journal_init=0 "$LOOP"
	mount_at "$LOOP" "$MNT/build"
	budget=$((EXT4_SIZE * 55 / 100 / 1024 - RAND_MIB * 1024))
	used=0
	for src in "go1:$GOROOT_DIR" "go2:$GOROOT_DIR" "lib:$LIB_DIR" "bin:/usr/bin"; do
		name=${src%%:*}
		src=${src#*:}
		[[ -n $src && -d $src ]] || continue
		[[ $name == bin && " ${picked[*]} " == *" lib:"* ]] && continue # a library dir or the binaries
		k=$(kib_of "$src")
		((used + k <= budget)) || continue
		log "  ext4: copying $src ($((k / 1024)) MiB) to /$name"
		step "copy-$name" cp -a "$src" "$MNT/build/$name"
		picked+=("$name:$src")
		used=$((used + k))
	done
	((${#picked[@]})) || die "no source tree fits the ext4 budget of $((budget / 1024)) MiB"
	mkdir -p "$MNT/build/random"
	rand_file ext4-r00 $((RAND_MIB / 2)) "$MNT/build/random/r00.bin"
	for i in 01 02 03 04 05 06 07 08 09 10; do
		rand_file "ext4-r$i" $((RAND_MIB / 20)) "$MNT/build/random/r$i.bin"
	done
	go_files=$(find "$MNT/build" -type f -name '*.go' | wc -l)
	all_files=$(find "$MNT/build" -type f | wc -l)
	sync -f "$MNT/build"
	used=$(df -B1 --output=used "$MNT/build" | tail -n 1 | tr -d ' ')
	umount_at "$MNT/build"
	loop_detach "$LOOP"
	loop_attach "$img" "$EXT4_OFF" "$EXT4_SIZE" -r
	step fsck-ext4 e2fsck -fn "$LOOP"
	loop_detach "$LOOP"

	# FAT32: part of Go's source and API files plus random files, copied with mcopy.
	loop_attach "$img" "$FAT_OFF" "$FAT_SIZE"
	step mkfs-fat mkfs.vfat -F 32 -i 5EB1C0DE -n BENCHFAT "$LOOP"
	step mcopy-src mcopy -s -m -Q -D o -i "$LOOP" "$GOROOT_DIR/src/crypto" "$GOROOT_DIR/api" ::/
	step mmd mmd -i "$LOOP" ::/random
	for i in 0 1; do
		rand_file "fat-r$i" $((FATRAND_MIB / 2)) "$CORPUS/fat-r$i.bin"
		step "mcopy-r$i" mcopy -m -i "$LOOP" "$CORPUS/fat-r$i.bin" "::/random/r$i.bin"
		rm -f "$CORPUS/fat-r$i.bin"
	done
	step fsck-fat fsck.fat -n "$LOOP"
	fat_used=$(python3 -c 'import sys,re; t=open(sys.argv[1]).read(); m=re.search(r"(\d+) files, (\d+)/(\d+) clusters", t); print(m.group(0) if m else "?")' "$L/fsck-fat.out")
	loop_detach "$LOOP"

	mv "$img" "$BASE"
	{
		printf 'stamp\t%s\n' "$STAMP"
		printf 'ext4_sources\t%s\n' "${picked[*]}"
		printf 'ext4_used_bytes\t%s\n' "$used"
		printf 'ext4_files\t%s\n' "$all_files"
		printf 'ext4_go_files\t%s\n' "$go_files"
		printf 'fat_fsck\t%s\n' "$fat_used"
	} >"$CORPUS/info.tsv"
}

info() { awk -F'\t' -v k="$1" '$1 == k {print $2}' "$CORPUS/info.tsv"; }

STAMP="v1 gb=$GB seed=$SEED goroot=$GOROOT_DIR lib=$LIB_DIR ext4=$EXT4_MIB fat=$FAT_MIB rand=$RAND_MIB"
log "scratch directory $D"
read -r LOAD_START _ </proc/loadavg
if [[ -f $BASE && -f $CORPUS/info.tsv && $(info stamp) == "$STAMP" ]]; then
	log "reusing the disk image $BASE (same settings)"
else
	log "building a ${GB} GiB GPT disk image: ext4 ${EXT4_MIB} MiB, FAT32 ${FAT_MIB} MiB (seed $SEED)"
	build_corpus
fi
log "image: ext4 $(($(info ext4_used_bytes) / MiB)) MiB used, $(info ext4_files) files ($(info ext4_sources)); FAT32: $(info fat_fsck)"

# ------------------------------------------------------------------ phases
# change_work ROUND: append a line to every 20th .go file in ext4 and add a random file.
change_work() {
	local round=$1 n
	loop_attach "$WORK" "$EXT4_OFF" "$EXT4_SIZE"
	mount_at "$LOOP" "$MNT/work"
	find "$MNT/work" -type f -name '*.go' | LC_ALL=C sort | awk 'NR % 20 == 0' >"$L/r$round-changed.list"
	while IFS= read -r f; do
		printf '// bench-image change, seed %s\n' "$SEED" >>"$f"
	done <"$L/r$round-changed.list"
	n=$(wc -l <"$L/r$round-changed.list")
	rand_file ext4-incr "$INCR_MIB" "$MNT/work/random/added.bin"
	umount_at "$MNT/work"
	loop_detach "$LOOP"
	log "  changed: appended a line to $n of $(info ext4_go_files) .go files, added a ${INCR_MIB} MiB random file"
	meta changed_files "$((n + 1))"
}

# digest_part IMG OFFSET SIZE NAME: file-tree digest of the ext4 partition in IMG.
digest_part() {
	loop_attach "$1" "$2" "$3" -r
	mount_at "$LOOP" "$MNT/$4" ro,noload
	step "digest-$4" python3 "$GEN" digest "$MNT/$4"
	umount_at "$MNT/$4"
	loop_detach "$LOOP"
	cat "$L/digest-$4.out"
}

# verify_restore IMG: the BES-restored image must hold clean file systems with the same files.
verify_restore() {
	local img=$1 first a b
	loop_attach "$img" "$EXT4_OFF" "$EXT4_SIZE" -r
	step "r$round-e2fsck" e2fsck -fn "$LOOP"
	loop_detach "$LOOP"
	loop_attach "$img" "$FAT_OFF" "$FAT_SIZE" -r
	step "r$round-fsckfat" fsck.fat -n "$LOOP"
	loop_detach "$LOOP"
	log "  bes restore: e2fsck -fn and fsck.fat -n are clean"
	if first=$(cmp "$WORK" "$img" 2>&1); then
		log "  bes restore: byte-identical to the source image"
		meta identical yes
		return
	fi
	# unused blocks are not restored (they stay holes): compare the files instead
	log "  bes restore: not byte-identical ($first); comparing the ext4 file trees"
	meta identical "no: $first"
	a=$(digest_part "$WORK" "$EXT4_OFF" "$EXT4_SIZE" src)
	b=$(digest_part "$img" "$EXT4_OFF" "$EXT4_SIZE" restored)
	[[ $a == "$b" ]] || die "bes restore: ext4 files differ from the source: source '$a', restored '$b'"
	log "  bes restore: ext4 file trees match"
}

restic_backup() { # measure wrapper target: restic reads the image from stdin
	# shellcheck disable=SC2016
	measure "$1" "$2" restic sh -c 'exec restic backup --host bench --stdin --stdin-filename disk.img <"$1"' _ "$WORK"
}

bes_backup() { # bes_backup ROUND PHASE [bes options...]
	local round=$1 phase=$2
	shift 2
	measure "$round" "$phase" bes "$BES" "$@" image backup "$WORK" --host bench --json
}

# Restore commands run under sh -c with the output file as $1.
SYNC_CMD=:
# shellcheck disable=SC2016
[[ $RESTORE_SYNC == 1 ]] && SYNC_CMD='sync "$1"'

for ((round = 1; round <= ROUNDS; round++)); do
	log "round $round of $ROUNDS"
	rm -rf "$WORK" "$O" "$D/restic" "$D/restic-cache" "$D/bes" "${DISKS[@]}" "$D/bes-big" "${BIGDISKS[@]}"
	mkdir -p "$O"
	step "r$round-copy" cp --sparse=always "$BASE" "$WORK"
	step "r$round-restic-init" restic init
	step "r$round-bes-init" "$BES" init --disks "$(csv "${DISKS[@]}")" --ec "$EC_K+$EC_M"

	log " phase: full image backup (${GB} GiB disk)"
	b0=$(bytes_of "${DISKS[@]}")
	r0=$(bytes_of "$D/bes")
	warm "$WORK"
	bes_backup "$round" full
	b1=$(bytes_of "${DISKS[@]}")
	r1=$(bytes_of "$D/bes")
	stored "$round" full bes "$(pre_ec $((b1 - b0)))" $((r1 - r0))

	s0=$(bytes_of "$D/restic")
	warm "$WORK"
	restic_backup "$round" full
	s1=$(bytes_of "$D/restic")
	stored "$round" full restic $((s1 - s0))

	loop_attach "$WORK" "$EXT4_OFF" "$EXT4_SIZE" -r
	p1=$LOOP
	loop_attach "$WORK" "$FAT_OFF" "$FAT_SIZE" -r
	p2=$LOOP
	warm "$WORK"
	# shellcheck disable=SC2016
	measure "$round" full partclone bash -c 'set -o pipefail
		dd if="$1" bs=1M count=1 status=none | zstd -1 -q >"$4/head.zst" &&
		partclone.ext4 -c -q -s "$2" -o - -L "$5/r'"$round"'-partclone-ext4.log" | zstd -1 -T0 -q >"$4/p1.pc.zst" &&
		"$6" -c -q -s "$3" -o - -L "$5/r'"$round"'-partclone-fat.log" | zstd -1 -T0 -q >"$4/p2.pc.zst"' \
		_ "$WORK" "$p1" "$p2" "$O" "$L" "$PC_FAT"
	loop_detach "$p1"
	loop_detach "$p2"
	stored "$round" full partclone "$(bytes_of "$O/head.zst" "$O/p1.pc.zst" "$O/p2.pc.zst")"
	rm -f "$O/head.zst" "$O/p1.pc.zst" "$O/p2.pc.zst"

	warm "$WORK"
	# shellcheck disable=SC2016
	measure "$round" full ddzstd bash -c 'set -o pipefail; dd if="$1" bs=4M status=none | zstd -1 -T0 -q >"$2"' \
		_ "$WORK" "$O/disk.img.zst"
	stored "$round" full ddzstd "$(bytes_of "$O/disk.img.zst")"
	rm -f "$O/disk.img.zst"

	log " phase: incremental backup after ~5% of the files changed"
	change_work "$round"
	warm "$WORK"
	bes_backup "$round" incr
	b2=$(bytes_of "${DISKS[@]}")
	r2=$(bytes_of "$D/bes")
	stored "$round" incr bes "$(pre_ec $((b2 - b1)))" $((r2 - r1))
	warm "$WORK"
	restic_backup "$round" incr
	s2=$(bytes_of "$D/restic")
	stored "$round" incr restic $((s2 - s1))

	log " phase: restore to a file (restore times $([[ $RESTORE_SYNC == 1 ]] && echo include || echo exclude) flushing it to disk)"
	point=$(latest_point "r$round-bes-points")
	[[ -n $point ]] || die "'bes points --json' gave an empty point id"
	# shellcheck disable=SC2016
	measure "$round" restore dd sh -c 'dd if="$2" of="$1" bs=4M conv=sparse status=none && '"$SYNC_CMD" \
		_ "$O/dd.img" "$WORK"
	stored "$round" restore dd "$(alloc_of "$O/dd.img")"
	rm -f "$O/dd.img"
	# shellcheck disable=SC2016
	measure "$round" restore restic sh -c 'restic dump latest /disk.img >"$1" && '"$SYNC_CMD" _ "$O/restic.img"
	[[ $(stat -c %s "$O/restic.img") == "$DISK_BYTES" ]] || die "restic dump wrote $(stat -c %s "$O/restic.img") bytes, not $DISK_BYTES"
	stored "$round" restore restic "$(alloc_of "$O/restic.img")"
	rm -f "$O/restic.img"
	truncate -s "$DISK_BYTES" "$O/bes.img"
	# shellcheck disable=SC2016
	measure "$round" restore bes sh -c '"$2" image restore "$3" --target "$1" --overwrite --json && '"$SYNC_CMD" \
		_ "$O/bes.img" "$BES" "$point"
	stored "$round" restore bes "$(alloc_of "$O/bes.img")"
	verify_restore "$O/bes.img"
	rm -f "$O/bes.img"
	rm -rf "$D/restic" "$D/restic-cache" "$D/bes" "${DISKS[@]}"

	log " phase: memory, the disk grown to ${BIG_GB} GiB (sparse, no new data)"
	step "r$round-grow" truncate -s "$BIG_BYTES" "$WORK"
	step "r$round-sgdisk" sgdisk -e "$WORK"
	step "r$round-bes-big-init" "$BES" -r "$D/bes-big" init --disks "$(csv "${BIGDISKS[@]}")" --ec "$EC_K+$EC_M"
	b0=$(bytes_of "${BIGDISKS[@]}")
	r0=$(bytes_of "$D/bes-big")
	warm_data "$WORK"
	bes_backup "$round" big -r "$D/bes-big"
	b1=$(bytes_of "${BIGDISKS[@]}")
	r1=$(bytes_of "$D/bes-big")
	stored "$round" big bes "$(pre_ec $((b1 - b0)))" $((r1 - r0))
	rm -rf "$WORK" "$D/bes-big" "${BIGDISKS[@]}"
done
read -r LOAD_END _ </proc/loadavg

# ------------------------------------------------------------------ report
meta load_start "$LOAD_START"
meta load_end "$LOAD_END"
BES_SHA=$(sha256sum "$BES" | cut -c1-16)
BES_REV=$(git -C "$(dirname "$BES")" rev-parse --short HEAD 2>/dev/null || echo unknown)
export BES RESTIC_VERSION PARTCLONE_VERSION ZSTD_VERSION BES_SHA BES_REV GB BIG_GB DISK_BYTES BIG_BYTES EXT4_MIB \
	FAT_MIB RAND_MIB INCR_MIB SEED RESTORE_SYNC EC_K EC_M GOROOT_DIR
python3 - "$D/results.tsv" "$D/stored.tsv" "$D/meta.tsv" "$CORPUS/info.tsv" "$L" "$OUT" <<'PY' || die "writing the report failed"
import datetime, json, os, sys
res_f, stored_f, meta_f, info_f, logdir, out = sys.argv[1:7]
E = os.environ
K, M = int(E["EC_K"]), int(E["EC_M"])
disk, big = int(E["DISK_BYTES"]), int(E["BIG_BYTES"])
MiB = 1 << 20

def kv(path):
    d = {}
    for line in open(path):
        k, _, v = line.rstrip("\n").partition("\t")
        d[k] = v
    return d
meta, info = kv(meta_f), kv(info_f)

runs = {}
for line in open(res_f):
    r, ph, tool, wall, rss, usr, sys_, load = line.rstrip("\n").split("\t")
    runs.setdefault((ph, tool), []).append({"round": int(r), "wall_s": float(wall), "max_rss_kib": int(rss),
                                            "user_s": float(usr), "sys_s": float(sys_), "load1": float(load)})
stored = {}
for line in open(stored_f):
    r, ph, tool, b, extra = line.split()
    stored[(ph, tool)] = (int(b), int(extra))  # last round wins

def bes_json(ph, r):
    try:
        return json.load(open(os.path.join(logdir, "r%d-%s-bes.out" % (r, ph))))
    except (OSError, ValueError):
        return None

phases = [("full", "full backup", disk, [("bes", "BES"), ("restic", "restic --stdin"), ("partclone", "partclone+zstd"), ("ddzstd", "dd+zstd")],
           "stored"),
          ("incr", "incremental", disk, [("bes", "BES"), ("restic", "restic --stdin")], "added"),
          ("restore", "restore", disk, [("bes", "BES"), ("restic", "restic dump"), ("dd", "dd conv=sparse")], "allocated"),
          ("big", "full backup %d GiB" % int(E["BIG_GB"]), big, [("bes", "BES")], "stored")]
cells = {}
rows = []
for ph, label, size, tools, what in phases:
    for tool, tlabel in tools:
        rs = runs.get((ph, tool))
        if not rs:
            continue
        best = min(rs, key=lambda x: x["wall_s"])
        b, extra = stored.get((ph, tool), (None, 0))
        c = {"label": tlabel, "best_wall_s": best["wall_s"], "best_user_s": best["user_s"], "best_sys_s": best["sys_s"],
             "load1_at_best": best["load1"], "max_rss_mib": max(x["max_rss_kib"] for x in rs) / 1024.0,
             "mb_per_s": size / 1e6 / best["wall_s"] if best["wall_s"] > 0 else None, "bytes": b, "bytes_kind": what,
             "rounds": rs}
        if tool == "bes":
            c["bytes_note"] = "disk bytes x %d/%d (no parity); repository dir %+d bytes" % (K, K + M, extra) \
                if ph != "restore" else "allocated bytes of the restored image"
            c["bes_json"] = bes_json(ph, best["round"])
        cells[(ph, tool)] = c
        rows.append((label, tlabel, "%.2f" % c["best_wall_s"], "%.1f" % c["mb_per_s"],
                     "%.1f" % (c["best_user_s"] + c["best_sys_s"]), "%.0f" % c["max_rss_mib"],
                     "%.1f %s" % (b / MiB, what) if b is not None else "-", "%.1f" % c["load1_at_best"]))

def get(ph, tool, k):
    c = cells.get((ph, tool))
    return c[k] if c else None

checks = []
def check(label, value, target, ok, cpu=None):
    checks.append({"check": label, "value": value, "target": target, "pass": bool(ok), "cpu_time_ratio": cpu})

def ratio(a, b):
    return a / b if a is not None and b else None

def cpu(ph, tool):
    c = cells.get((ph, tool))
    return c["best_user_s"] + c["best_sys_s"] if c else None

# On a busy machine wall times swing; the CPU-time ratio (other tool's CPU s /
# BES's CPU s, best round) is printed next to each speed check as context.
def cpu_ratio(ph, other):
    return ratio(cpu(ph, other), cpu(ph, "bes"))

x = ratio(get("full", "bes", "mb_per_s"), get("full", "restic", "mb_per_s"))
check("full backup MB/s, BES / restic", x, ">= 2", x is not None and x >= 2, cpu_ratio("full", "restic"))
x = ratio(get("full", "bes", "mb_per_s"), get("full", "partclone", "mb_per_s"))
check("full backup MB/s, BES / partclone+zstd", x, ">= 1", x is not None and x >= 1, cpu_ratio("full", "partclone"))
x = ratio(get("incr", "bes", "mb_per_s"), get("incr", "restic", "mb_per_s"))
check("incremental MB/s, BES / restic", x, ">= 5", x is not None and x >= 5, cpu_ratio("incr", "restic"))
x = ratio(get("incr", "bes", "bytes"), get("incr", "restic", "bytes"))
check("incremental bytes added, BES / restic", x, "<= 1", x is not None and x <= 1)
x = ratio(get("restore", "bes", "mb_per_s"), get("restore", "restic", "mb_per_s"))
check("restore MB/s, BES / restic", x, ">= 2", x is not None and x >= 2, cpu_ratio("restore", "restic"))
x = ratio(get("restore", "bes", "mb_per_s"), get("restore", "dd", "mb_per_s"))
check("restore MB/s, BES / dd", x, ">= 0.8", x is not None and x >= 0.8, cpu_ratio("restore", "dd"))
peak = max(c["max_rss_mib"] for (ph, t), c in cells.items() if t == "bes")
check("BES peak RSS MiB, all phases", peak, "< 300", peak < 300)
x = ratio(get("big", "bes", "max_rss_mib"), get("full", "bes", "max_rss_mib"))
check("BES peak RSS, %d GiB / %d GiB" % (int(E["BIG_GB"]), int(E["GB"])), x, "<= 1.25 (flat)", x is not None and x <= 1.25)

hdr = ("phase", "tool", "s", "MB/s", "CPU s", "RSS MiB", "bytes MiB", "load1")
w = [max(len(str(r[i])) for r in [hdr] + rows) for i in range(len(hdr))]
fmt = lambda r: "  ".join((str(v).ljust(w[i]) if i < 2 else str(v).rjust(w[i])) for i, v in enumerate(r))
print()
print("disk: %d GiB GPT image, ext4 %s MiB (%.0f MiB used, %s files: %s), FAT32 %s MiB (%s); change: %s files"
      % (int(E["GB"]), E["EXT4_MIB"], int(info["ext4_used_bytes"]) / MiB, info["ext4_files"], info["ext4_sources"],
         E["FAT_MIB"], info["fat_fsck"], meta.get("changed_files", "?")))
print("MB/s = disk size (%d GiB; %d GiB for the last row) / wall time; best of %d round(s), peak RSS max over rounds;"
      % (int(E["GB"]), int(E["BIG_GB"]), max(r["round"] for rs in runs.values() for r in rs)))
print("BES bytes = disk growth x %d/%d (parity removed); restores %s flushing the output to disk; bes restore: %s"
      % (K, K + M, "include" if E["RESTORE_SYNC"] == "1" else "exclude", meta.get("identical", "?") == "yes"
         and "byte-identical" or "files match (" + meta.get("identical", "?") + ")"))
print("load average (1 min) at start %s, at end %s, on %d cores" % (meta["load_start"], meta["load_end"], os.cpu_count()))
print(fmt(hdr))
for r in rows:
    print(fmt(r))
print()
cw = max(len(c["check"]) for c in checks)
for c in checks:
    v = c["value"]
    vs = "n/a" if v is None else ("%.0f" % v if "MiB" in c["check"] else "%.2fx" % v)
    extra = "" if c["cpu_time_ratio"] is None else "  (CPU time other/BES %.2fx)" % c["cpu_time_ratio"]
    print("%s  %8s  target %-16s %s%s" % (c["check"].ljust(cw), vs, c["target"], "PASS" if c["pass"] else "MISS", extra))

doc = {
    "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "bes_binary": E["BES"], "bes_sha256_16": E["BES_SHA"], "bes_git_rev": E["BES_REV"],
    "restic_version": E["RESTIC_VERSION"], "partclone_version": E["PARTCLONE_VERSION"], "zstd_version": E["ZSTD_VERSION"],
    "machine": {"nproc": os.cpu_count(), "load1_start": float(meta["load_start"]), "load1_end": float(meta["load_end"])},
    "disk": {"bytes": disk, "big_bytes": big, "ext4_mib": int(E["EXT4_MIB"]), "fat32_mib": int(E["FAT_MIB"]),
             "ext4_used_bytes": int(info["ext4_used_bytes"]), "ext4_files": int(info["ext4_files"]),
             "ext4_sources": info["ext4_sources"], "goroot": E["GOROOT_DIR"], "random_mib": int(E["RAND_MIB"]),
             "fat32": info["fat_fsck"], "seed": int(E["SEED"])},
    "change": {"files": meta.get("changed_files"), "added_random_mib": int(E["INCR_MIB"])},
    "ec": "%d+%d" % (K, M), "restore_includes_sync": E["RESTORE_SYNC"] == "1",
    "bes_restore_identical": meta.get("identical"),
    "phases": {"%s/%s" % k: v for k, v in cells.items()},
    "checks": checks,
}
with open(out, "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")
print("results written to", out)
PY
