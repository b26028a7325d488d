#!/usr/bin/python3
"""dispatch_dask.py -- the Dask distributed side of bench/dispatch: task dispatch cost.

Measures, on a LocalCluster of 2 worker processes x 1 thread (the shape of ember's bench
cluster: 2 executors x 1 slot), the same things bench/jobs/bench_noop.c measures in ember:

  throughput  client.map of a no-op over N items, then client.gather; timed around map+gather.
              Sizes from --tasks (default 10000,100000). A size is skipped, and said so, when the
              previous one took longer than --skip-after seconds (default 60).
  latency     --reps (default 200) sequential client.submit(noop).result(), each timed alone;
              median and nearest-rank p99 (the ceil(0.99 * reps)-th smallest sample).
  cold        --cold-runs (default 10) new Python processes that each import distributed,
              connect a Client to the running scheduler, run one no-op task and exit; the time
              of the whole process, median. The Dask counterpart of ember's "cold submit".

One untimed warm-up task runs first, as in bench_noop. Tasks use pure=False so no run reuses
another run's keys. The result is one JSON object on stdout; Dask's own logs go to stderr.
Dask's configuration is left at its defaults (queuing included), except the dashboard, which
is off; --saturation inf turns queuing off (distributed.scheduler.worker-saturation).

Run with Debian's interpreter and python3-distributed:
    /usr/bin/python3 bench/dispatch_dask.py --tasks 10000,100000 --reps 200
"""
import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time


def noop(x):
    """The task body: does nothing and returns its argument."""
    return x


def nearest_rank(sorted_values, fraction):
    """The ceil(fraction * n)-th smallest value of an already sorted list."""
    k = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[k - 1]


def run_throughput(client, n):
    """Map a no-op over n items and gather: returns the seconds taken."""
    t0 = time.perf_counter()
    futures = client.map(noop, range(n), pure=False)
    results = client.gather(futures)
    seconds = time.perf_counter() - t0
    if len(results) != n or results[-1] != n - 1:
        raise RuntimeError(f"gather returned {len(results)} results for {n} tasks")
    del futures, results
    return seconds


def run_latency(client, reps):
    """reps sequential single-task round trips: returns the sorted milliseconds."""
    samples = []
    for i in range(reps):
        t0 = time.perf_counter()
        if client.submit(noop, i, pure=False).result() != i:
            raise RuntimeError("wrong result from a single task")
        samples.append((time.perf_counter() - t0) * 1e3)
    return sorted(samples)


def run_cold(address, runs):
    """Time whole new processes that connect, run one task and exit: sorted milliseconds."""
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, os.path.abspath(__file__), "--cold-client", address],
                       check=True, stdout=subprocess.DEVNULL, timeout=120)
        samples.append((time.perf_counter() - t0) * 1e3)
    return sorted(samples)


def cold_client(address):
    """Body of one cold-client process (--cold-client ADDRESS)."""
    from distributed import Client
    with Client(address) as client:
        if client.submit(noop, 1, pure=False).result() != 1:
            sys.exit(1)


def measure(args):
    import dask
    import distributed
    from distributed import Client, LocalCluster

    out = {"dask_version": dask.__version__, "distributed_version": distributed.__version__,
           "python": platform.python_version(), "workers": 2, "threads_per_worker": 1,
           "worker_saturation": str(dask.config.get("distributed.scheduler.worker-saturation")),
           "throughput": [], "latency": None, "cold": None}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.submit(noop, -1, pure=False).result()  # warm-up
        previous = 0.0
        for n in args.tasks:
            if previous > args.skip_after:
                out["throughput"].append({"tasks": n, "skipped": True, "reason":
                                          f"previous size took {previous:.1f} s > "
                                          f"{args.skip_after:g} s"})
                continue
            previous = run_throughput(client, n)
            out["throughput"].append({"tasks": n, "seconds": previous,
                                      "tasks_per_s": n / previous})
            print(f"dask: {n} tasks in {previous:.3f} s", file=sys.stderr)
        if args.reps > 0:
            ms = run_latency(client, args.reps)
            out["latency"] = {"reps": args.reps, "median_ms": statistics.median(ms),
                              "p99_ms": nearest_rank(ms, 0.99), "min_ms": ms[0],
                              "max_ms": ms[-1]}
        if args.cold_runs > 0:
            ms = run_cold(cluster.scheduler_address, args.cold_runs)
            out["cold"] = {"runs": args.cold_runs, "median_ms": statistics.median(ms),
                           "min_ms": ms[0], "max_ms": ms[-1]}
    return out


def main():
    parser = argparse.ArgumentParser(description="Dask side of bench/dispatch")
    parser.add_argument("--tasks", default="10000,100000",
                        help="comma-separated task counts for the throughput runs")
    parser.add_argument("--reps", type=int, default=200, help="single-task round trips (0: none)")
    parser.add_argument("--cold-runs", type=int, default=10, help="cold client processes (0: none)")
    parser.add_argument("--skip-after", type=float, default=60.0,
                        help="skip the next size if one took longer than this (seconds)")
    parser.add_argument("--saturation", default=None,
                        help="distributed.scheduler.worker-saturation (e.g. inf: no queuing)")
    parser.add_argument("--cold-client", metavar="ADDRESS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cold_client:
        cold_client(args.cold_client)
        return
    args.tasks = [int(t) for t in args.tasks.split(",") if t]
    if args.saturation is not None:
        import dask
        dask.config.set({"distributed.scheduler.worker-saturation": float(args.saturation)})
    print(json.dumps(measure(args)))


if __name__ == "__main__":
    main()
