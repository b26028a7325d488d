#!/usr/bin/python3
"""wordcount_dask.py -- the data and the Dask distributed side of bench/wordcount.

Two commands:

  generate  writes the benchmark's text: --lines lines (default 2,000,000) of --words words
            (default 8) separated by single spaces, drawn from a vocabulary of --vocab
            pseudo-words (default 10,000; lower-case letters, 3 to 9 of them, all distinct)
            with Zipf-like frequencies (the k-th word has weight 1/k, as in natural text).
            Everything comes from Python's random.Random(--seed), so the same arguments give
            the same bytes on every machine and run. The lines go, in order, to --files
            (default 16) files DIR/part-NN.txt of contiguous, near-equal line counts: bench/
            wordcount feeds their concatenation to ember's Kafka topic and the files themselves
            to Dask. Prints one JSON object: lines, words, distinct_words (how many vocabulary
            words the lines actually use), bytes, files.

  run       word frequencies of FILES on a LocalCluster of 2 worker processes x 1 thread (the
            shape of ember's bench cluster, 2 executors x 1 slot), dashboard off:
                dask.bag.read_text(files).str.split().flatten().frequencies().compute()
            timed with time.perf_counter around that call only, after an untimed warm-up
            (one task, then the same bag pipeline over 16 short in-memory lines in 4
            partitions: workers started and connected, the code path imported on both).
            --reps N repeats the timed call (default 1) and reports each time and the best.
            Checks nothing itself but prints what bench/wordcount checks: distinct (words in
            the result) and total (sum of the counts).
            Prints one JSON object; Dask's own logs go to stderr.

Run with Debian's interpreter and python3-distributed:
    /usr/bin/python3 bench/wordcount_dask.py generate --out /tmp/wc-data
    /usr/bin/python3 bench/wordcount_dask.py run /tmp/wc-data/part-*.txt
"""
import argparse
import bisect
import itertools
import json
import os
import platform
import random
import string
import sys
import time


def make_vocab(rng, n):
    """n distinct pseudo-words of 3 to 9 lower-case letters, in a seeded order."""
    seen, vocab = set(), []
    while len(vocab) < n:
        w = "".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9)))
        if w not in seen:
            seen.add(w)
            vocab.append(w)
    return vocab


def generate(args):
    rng = random.Random(args.seed)
    vocab = make_vocab(rng, args.vocab)
    cum = list(itertools.accumulate(1.0 / k for k in range(1, args.vocab + 1)))
    total_w = cum[-1]
    os.makedirs(args.out, exist_ok=True)
    used = bytearray(args.vocab)
    nbytes = 0
    per_file = [args.lines // args.files + (1 if i < args.lines % args.files else 0)
                for i in range(args.files)]
    rand, bis, w = rng.random, bisect.bisect, args.words
    last = args.vocab - 1
    for f, n in enumerate(per_file):
        lines = []
        for _ in range(n):
            idx = [bis(cum, rand() * total_w) for _ in range(w)]
            for i in idx:
                used[min(i, last)] = 1
            lines.append(" ".join(vocab[min(i, last)] for i in idx))
        text = "\n".join(lines) + "\n" if lines else ""
        with open(os.path.join(args.out, f"part-{f:02d}.txt"), "w", encoding="ascii") as fh:
            fh.write(text)
        nbytes += len(text)
    print(json.dumps({"lines": args.lines, "words": args.lines * w, "distinct_words": sum(used),
                      "vocab": args.vocab, "bytes": nbytes, "files": args.files,
                      "seed": args.seed}))


def noop(x):
    return x


def run(args):
    import dask
    import dask.bag as db
    import distributed
    from distributed import Client, LocalCluster

    files = sorted(args.files)
    out = {"dask_version": dask.__version__, "distributed_version": distributed.__version__,
           "python": platform.python_version(), "workers": 2, "threads_per_worker": 1,
           "files": len(files), "seconds": [], "distinct": None, "total": None}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.submit(noop, -1, pure=False).result()  # warm-up: both workers up and connected
        # warm-up of the measured code path on both workers (imports, serialization), untimed
        db.from_sequence(["a b", "b c"] * 8, npartitions=4).str.split().flatten() \
            .frequencies().compute()
        for rep in range(args.reps):
            t0 = time.perf_counter()
            freq = db.read_text(files).str.split().flatten().frequencies().compute()
            seconds = time.perf_counter() - t0
            out["seconds"].append(seconds)
            out["distinct"] = len(freq)
            out["total"] = sum(c for _, c in freq)
            print(f"dask: word count rep {rep + 1} in {seconds:.3f} s", file=sys.stderr)
            del freq
    out["best_seconds"] = min(out["seconds"])
    return out


def main():
    parser = argparse.ArgumentParser(description="data and Dask side of bench/wordcount")
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="write the benchmark's lines to DIR/part-NN.txt")
    g.add_argument("--out", required=True, help="directory for the files")
    g.add_argument("--lines", type=int, default=2_000_000)
    g.add_argument("--words", type=int, default=8, help="words per line")
    g.add_argument("--vocab", type=int, default=10_000, help="vocabulary size")
    g.add_argument("--files", type=int, default=16)
    g.add_argument("--seed", type=int, default=20261122)
    r = sub.add_parser("run", help="Dask word frequencies of FILES")
    r.add_argument("files", nargs="+")
    r.add_argument("--reps", type=int, default=1, help="timed runs (default 1)")
    args = parser.parse_args()
    if args.command == "generate":
        generate(args)
    else:
        print(json.dumps(run(args)))


if __name__ == "__main__":
    main()
