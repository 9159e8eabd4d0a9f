#!/usr/bin/env python3
"""Deterministic benchmark corpus tool for scripts/bench-compare.sh.

  gen-corpus.py gen DIR [--mb N] [--seed S]
      Write ~N MiB of mixed files under DIR (which must not exist yet or be
      empty): compressible text (word salad and log lines), random
      (incompressible) bytes, partly-zero files with holes, and files built
      from a shared pool of random blocks (dedup within and across files).
      Sizes run from a few KiB to 64 MiB. Same --mb and --seed, same bytes.

  gen-corpus.py mutate DIR --undo UNDODIR [--seed S] [--fraction F]
      Change ~F (default 0.05) of the regular files under DIR, chosen by
      seed: half get a few KiB appended, the other half get a random 64 KiB
      region overwritten. The original files are saved under UNDODIR first.

  gen-corpus.py undo DIR --undo UNDODIR
      Put the files saved by mutate back (content and mtime).

  gen-corpus.py digest DIR
      Print a sha256 over every entry's relative path, type and content
      (symlinks: target), sorted by path, followed by the file count and
      byte count. Two trees with the same digest hold the same files.
"""

import argparse
import hashlib
import json
import os
import random
import shutil
import stat
import sys

KiB = 1 << 10
MiB = 1 << 20

# ---------------------------------------------------------------- generation


def make_words(rng, n=3000):
    letters = "etaoinshrdlcumwfgypbvkjxqz"
    weights = [12, 9, 8, 7.5, 7, 6.7, 6.3, 6, 5.9, 4.3, 4, 2.8, 2.8, 2.4, 2.4, 2.2,
               2, 2, 1.9, 1.5, 1, 0.8, 0.15, 0.15, 0.1, 0.07]
    words = set()
    while len(words) < n:
        ln = max(1, min(14, int(rng.gauss(6, 2.5))))
        words.add("".join(rng.choices(letters, weights, k=ln)))
    return sorted(words)


def gen_text(rng, f, size, words, cum):
    """Word salad with a Zipf-ish word distribution, wrapped in lines."""
    written = 0
    while written < size:
        ws = rng.choices(words, cum_weights=cum, k=40000)
        # a newline roughly every 12 words
        for i in range(11, len(ws), 12):
            ws[i] = ws[i] + "\n"
        b = " ".join(ws).encode()
        b = b[: size - written]
        f.write(b)
        written += len(b)


LEVELS = ["INFO", "INFO", "INFO", "DEBUG", "DEBUG", "WARN", "ERROR"]
COMPONENTS = ["api", "db", "cache", "auth", "scheduler", "worker", "backup", "net"]


def gen_log(rng, f, size, words):
    t = 1_700_000_000 + rng.randrange(10_000_000)
    written = 0
    buf = []
    blen = 0
    while written + blen < size:
        t += rng.randrange(0, 3)
        line = "2024-%02d-%02dT%02d:%02d:%02d.%03dZ %s [%s] req=%08x %s %s %s latency=%dms\n" % (
            (t // 2_592_000) % 12 + 1, (t // 86400) % 28 + 1, (t // 3600) % 24, (t // 60) % 60, t % 60,
            rng.randrange(1000), rng.choice(LEVELS), rng.choice(COMPONENTS), rng.getrandbits(32),
            rng.choice(words), rng.choice(words), rng.choice(words), rng.randrange(1, 900))
        buf.append(line)
        blen += len(line)
        if blen > MiB:
            b = "".join(buf).encode()
            f.write(b)
            written += len(b)
            buf, blen = [], 0
    b = "".join(buf).encode()[: size - written]
    f.write(b)


def gen_random(rng, f, size):
    left = size
    while left > 0:
        n = min(left, 4 * MiB)
        f.write(rng.randbytes(n))
        left -= n


def gen_sparse(rng, f, size):
    """Runs of random data separated by zero runs; most zero runs are holes."""
    pos = 0
    while pos < size:
        data = min(size - pos, rng.randrange(4 * KiB, 1 * MiB))
        f.write(rng.randbytes(data))
        pos += data
        zero = min(size - pos, rng.randrange(16 * KiB, 4 * MiB))
        if zero <= 0:
            break
        if rng.random() < 0.7:
            f.seek(zero, os.SEEK_CUR)  # a hole
        else:
            f.write(bytes(zero))
        pos += zero
    f.truncate(size)


def gen_blocks(rng, f, size, pool):
    """Repeated random blocks from a shared pool (dedups within and across files)."""
    left = size
    while left > 0:
        b = pool[rng.randrange(len(pool))]
        b = b[:left]
        f.write(b)
        left -= len(b)


def pick_size(rng):
    r = rng.random()
    if r < 0.70:
        lo, hi = 4 * KiB, 256 * KiB
    elif r < 0.95:
        lo, hi = 256 * KiB, 4 * MiB
    else:
        lo, hi = 4 * MiB, 64 * MiB
    # log-uniform within the band
    import math
    return int(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def cmd_gen(a):
    root = a.dir
    os.makedirs(root, exist_ok=True)
    if os.listdir(root):
        sys.exit(f"gen-corpus: {root} is not empty")
    rng = random.Random(a.seed)
    words = make_words(rng)
    cum, acc = [], 0.0
    for i in range(len(words)):
        acc += 1.0 / (i + 1)
        cum.append(acc)
    pool = [rng.randbytes(rng.choice([64 * KiB, 256 * KiB, 1 * MiB])) for _ in range(48)]
    budget = a.mb * MiB
    total = 0
    counts = {}
    i = 0
    kinds = [("text", 0.20), ("log", 0.15), ("random", 0.25), ("sparse", 0.20), ("blocks", 0.20)]
    while total < budget:
        size = min(pick_size(rng), budget - total)
        size = max(size, 1)
        r = rng.random()
        for kind, w in kinds:
            r -= w
            if r < 0:
                break
        d = os.path.join(root, "d%02d" % (i % 32))
        os.makedirs(d, exist_ok=True)
        ext = {"text": "txt", "log": "log", "random": "bin", "sparse": "img", "blocks": "dat"}[kind]
        path = os.path.join(d, "f%05d.%s" % (i, ext))
        with open(path, "wb") as f:
            if kind == "text":
                gen_text(rng, f, size, words, cum)
            elif kind == "log":
                gen_log(rng, f, size, words)
            elif kind == "random":
                gen_random(rng, f, size)
            elif kind == "sparse":
                gen_sparse(rng, f, size)
            else:
                gen_blocks(rng, f, size, pool)
        # fixed mtimes so the tree is byte- and metadata-reproducible
        os.utime(path, (1_700_000_000 + i, 1_700_000_000 + i))
        counts[kind] = counts.get(kind, 0) + 1
        total += size
        i += 1
    print(json.dumps({"files": i, "bytes": total, "by_kind": counts, "seed": a.seed}))


# ---------------------------------------------------------------- mutation


def regular_files(root):
    out = []
    for dp, dns, fns in os.walk(root):
        dns.sort()
        for fn in sorted(fns):
            p = os.path.join(dp, fn)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                out.append(os.path.relpath(p, root))
    out.sort()
    return out


def cmd_mutate(a):
    root = a.dir
    files = regular_files(root)
    if not files:
        sys.exit(f"gen-corpus: no files under {root}")
    rng = random.Random(a.seed * 7919 + 17)
    n = max(2, round(len(files) * a.fraction))
    chosen = sorted(rng.sample(files, min(n, len(files))))
    os.makedirs(a.undo, exist_ok=True)
    if os.listdir(a.undo):
        sys.exit(f"gen-corpus: undo dir {a.undo} is not empty (undo the last mutate first)")
    appended = overwritten = changed_bytes = 0
    for idx, rel in enumerate(chosen):
        p = os.path.join(root, rel)
        save = os.path.join(a.undo, rel)
        os.makedirs(os.path.dirname(save), exist_ok=True)
        shutil.copy2(p, save)
        size = os.path.getsize(p)
        if idx % 2 == 0:
            add = rng.randrange(1 * KiB, 8 * KiB)
            with open(p, "ab") as f:
                f.write(rng.randbytes(add))
            appended += 1
            changed_bytes += add
        else:
            region = min(64 * KiB, size)
            off = rng.randrange(0, size - region + 1) if size > region else 0
            with open(p, "r+b") as f:
                f.seek(off)
                f.write(rng.randbytes(region))
            overwritten += 1
            changed_bytes += region
    with open(os.path.join(a.undo, ".mutated.json"), "w") as f:
        json.dump(chosen, f)
    print(json.dumps({"files_total": len(files), "changed": len(chosen), "appended": appended,
                      "overwritten": overwritten, "changed_bytes": changed_bytes}))


def cmd_undo(a):
    lst = os.path.join(a.undo, ".mutated.json")
    if not os.path.exists(lst):
        return
    with open(lst) as f:
        chosen = json.load(f)
    for rel in chosen:
        src = os.path.join(a.undo, rel)
        dst = os.path.join(a.dir, rel)
        shutil.copy2(src, dst)  # content, mode and mtime
    shutil.rmtree(a.undo)
    os.makedirs(a.undo)


# ---------------------------------------------------------------- digest


def cmd_digest(a):
    root = a.dir
    h = hashlib.sha256()
    nfiles = nbytes = 0
    entries = []
    for dp, dns, fns in os.walk(root):
        for name in dns + fns:
            entries.append(os.path.join(dp, name))
    entries.sort()
    for p in entries:
        rel = os.path.relpath(p, root)
        st = os.lstat(p)
        if stat.S_ISLNK(st.st_mode):
            h.update(b"L\0" + rel.encode() + b"\0" + os.readlink(p).encode() + b"\0")
        elif stat.S_ISDIR(st.st_mode):
            h.update(b"D\0" + rel.encode() + b"\0")
        elif stat.S_ISREG(st.st_mode):
            fh = hashlib.sha256()
            with open(p, "rb") as f:
                while True:
                    b = f.read(4 * MiB)
                    if not b:
                        break
                    fh.update(b)
            h.update(b"F\0" + rel.encode() + b"\0" + fh.digest())
            nfiles += 1
            nbytes += st.st_size
        else:
            h.update(b"O\0" + rel.encode() + b"\0")
    print(h.hexdigest(), nfiles, nbytes)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sp = ap.add_subparsers(dest="cmd", required=True)
    g = sp.add_parser("gen")
    g.add_argument("dir")
    g.add_argument("--mb", type=int, default=1024)
    g.add_argument("--seed", type=int, default=20240601)
    m = sp.add_parser("mutate")
    m.add_argument("dir")
    m.add_argument("--undo", required=True)
    m.add_argument("--seed", type=int, default=20240601)
    m.add_argument("--fraction", type=float, default=0.05)
    u = sp.add_parser("undo")
    u.add_argument("dir")
    u.add_argument("--undo", required=True)
    d = sp.add_parser("digest")
    d.add_argument("dir")
    a = ap.parse_args()
    {"gen": cmd_gen, "mutate": cmd_mutate, "undo": cmd_undo, "digest": cmd_digest}[a.cmd](a)


if __name__ == "__main__":
    main()
