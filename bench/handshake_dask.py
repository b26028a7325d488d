#!/usr/bin/python3
"""handshake_dask.py -- the Dask distributed side of bench/handshake: a new connection's cost.

Starts a Dask scheduler in a process of its own (tcp://, and with --tls a tls:// one with
certificates from distributed's Security.temporary(), which needs python3-cryptography), then
times --n (default 2000) connections from this process, each alone, after 20 untimed ones:
distributed.comm.connect to the scheduler (TCP, TLS when asked, and Dask's handshake message
each way), one "identity" request and its reply (the first use of the connection, as ember's
HelloReply is), and close. Prints one JSON object per kind: {"kind", "n", "median_us",
"p99_us", "mean_us"}; p99 is the nearest rank. Dask's own logs go to stderr.

    /usr/bin/python3 bench/handshake_dask.py --n 2000 [--tls]
"""
import argparse
import asyncio
import json
import math
import multiprocessing
import statistics
import sys
import time

WARMUP = 20


def run_scheduler(security, queue):
    """The scheduler's process: serves until killed, its address sent back on queue."""
    from distributed import Scheduler

    async def main():
        async with Scheduler(
            host="127.0.0.1", port=0, dashboard_address=None, security=security
        ) as scheduler:
            queue.put(scheduler.address)
            await scheduler.finished()

    asyncio.run(main())


async def time_connections(address, n, connection_args):
    from distributed.comm import connect

    samples = []
    for i in range(-WARMUP, n):
        start = time.perf_counter()
        comm = await connect(address, **connection_args)
        await comm.write({"op": "identity", "reply": True})
        reply = await comm.read()
        await comm.close()
        elapsed = (time.perf_counter() - start) * 1e6
        if not isinstance(reply, dict) or reply.get("type") != "Scheduler":
            raise SystemExit(f"handshake_dask: unexpected identity reply: {reply!r}")
        if i >= 0:
            samples.append(elapsed)
    samples.sort()
    return {
        "n": n,
        "median_us": round(statistics.median(samples), 1),
        "p99_us": round(samples[math.ceil(0.99 * n) - 1], 1),
        "mean_us": round(statistics.fmean(samples), 1),
    }


def measure(kind, n, security):
    queue = multiprocessing.Queue()
    scheduler = multiprocessing.Process(target=run_scheduler, args=(security, queue), daemon=True)
    scheduler.start()
    try:
        address = queue.get(timeout=60)
        connection_args = security.get_connection_args("client") if security else {}
        result = asyncio.run(time_connections(address, n, connection_args))
        return {"kind": kind, **result}
    finally:
        scheduler.terminate()
        scheduler.join(10)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--tls", action="store_true", help="also time tls:// connections")
    args = parser.parse_args()
    print(json.dumps(measure("tcp", args.n, None)), flush=True)
    if args.tls:
        from distributed.security import Security

        print(json.dumps(measure("tls", args.n, Security.temporary())), flush=True)


if __name__ == "__main__":
    sys.exit(main())
