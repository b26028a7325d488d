#!/usr/bin/python3
"""taxi_distance_dask.py -- the Dask distributed side of bench/taxi_distance.

    taxi_distance_dask.py run [--reps N] [--shuffle-partitions P] [--out FILE] FILES...

Distance travelled per taxi, the computation of examples/taxi_distance.c, over taxi lines
"taxi_id,YYYY-MM-DD HH:MM:SS,longitude,latitude" in FILES, on a LocalCluster of 2 worker
processes x 1 thread (the shape of ember's bench cluster, 2 executors x 1 slot), dashboard
off. The pipeline, in dask.dataframe:

    dd.read_csv(FILES, all columns as strings, lines with too many fields skipped)
      .map_partitions(parse)       # pandas: to_numeric / to_datetime with errors="coerce",
                                   # rows with a missing or bad field or coordinates out of
                                   # range dropped; time as int64 ms
      .shuffle("id", npartitions=P, shuffle="tasks")   # all points of a taxi together
      .map_partitions(distances)   # numpy: order by (id, time, lon, lat), vectorized
                                   # haversine between consecutive points of a taxi, running
                                   # sum per taxi
      .compute()                   # a pandas Series taxi id -> km, 1,000 values

timed with time.perf_counter around that expression only, after an untimed warm-up (one
task, then the same pipeline over the first 2,000 lines of the first file, so that both
workers have imported pandas and the code path). --reps N repeats the timed run (default 1).

pandas' parsers accept a little more than the job's rules (e.g. "1e2", "+116.1"); the bench
data holds only taxi-data's malformed kinds (empty line, missing field, non-numeric
coordinate, bad timestamp, too many fields), which both reject. Each taxi's distance is the
same formula in the same order as the job's (examples/taxi_track.h), but numpy's
vectorized sin/cos/arctan2 may differ from libm's in the last bit: bench/taxi_distance
compares Dask's figures with a relative tolerance, ember's and the C baseline's exactly.

Prints one JSON object: seconds (each timed run), taxis, total_km (per-taxi distances summed
in bytewise taxi id order), versions; with --out, writes "taxi_id,km" lines (km "%.6f") in id
order. Dask's own logs go to stderr. Run with Debian's interpreter and python3-distributed:
    /usr/bin/python3 bench/taxi_distance_dask.py run --reps 3 /tmp/taxi/part-*.txt
"""
import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time

import numpy as np
import pandas as pd

EARTH_KM = 6371.0
RAD = math.pi / 180.0
COLUMNS = ["id", "time", "lon", "lat"]


def parse(df):
    """Typed, valid points of one partition: id (str), t (int64 ms), lon, lat (float64)."""
    lon = pd.to_numeric(df["lon"], errors="coerce")
    lat = pd.to_numeric(df["lat"], errors="coerce")
    t = pd.to_datetime(df["time"], format="%Y-%m-%d %H:%M:%S", errors="coerce")
    ok = (df["id"].notna() & t.notna() & lon.between(-180.0, 180.0) &
          lat.between(-90.0, 90.0))
    return pd.DataFrame({"id": df["id"][ok],
                         "t": t[ok].to_numpy().astype("datetime64[ms]").astype(np.int64),
                         "lon": lon[ok].astype(np.float64),
                         "lat": lat[ok].astype(np.float64)})


def distances(df):
    """km per taxi of one shuffled partition (every point of a taxi is in it).

    Taxi ids become integer codes (pd.factorize); np.lexsort orders the points by (code,
    time, lon, lat); the haversine is vectorized over consecutive points; np.bincount adds
    each taxi's steps in that order, one after the other (a plain running sum, as the job)."""
    codes, ids = pd.factorize(df["id"], sort=False)
    t = df["t"].to_numpy()
    lon = df["lon"].to_numpy()
    lat = df["lat"].to_numpy()
    order = np.lexsort((lat, lon, t, codes))
    codes, lon, lat = codes[order], lon[order], lat[order]
    phi1, phi2 = lat[:-1] * RAD, lat[1:] * RAD
    dphi = (lat[1:] - lat[:-1]) * RAD
    dlambda = (lon[1:] - lon[:-1]) * RAD
    s1, s2 = np.sin(dphi / 2), np.sin(dlambda / 2)
    a = s1 * s1 + np.cos(phi1) * np.cos(phi2) * s2 * s2
    d = 2 * EARTH_KM * np.arctan2(np.sqrt(a), np.sqrt(1 - a))
    same = codes[1:] == codes[:-1]  # no step between two taxis
    km = np.bincount(codes[1:][same], weights=d[same], minlength=len(ids))
    return pd.Series(km, index=pd.Index(ids, name="id"), name="km")


def pipeline(files, shuffle_partitions):
    import dask.dataframe as dd
    raw = dd.read_csv(files, header=None, names=COLUMNS, dtype=str, on_bad_lines="skip",
                      blocksize=None, skip_blank_lines=True)
    points = raw.map_partitions(parse, meta={"id": object, "t": np.int64, "lon": np.float64,
                                             "lat": np.float64})
    shuffled = points.shuffle("id", npartitions=shuffle_partitions, shuffle="tasks")
    return shuffled.map_partitions(distances, meta=pd.Series([], dtype=np.float64, name="km"))


def noop(x):
    return x


def run(args):
    import dask
    import distributed
    from distributed import Client, LocalCluster

    files = list(args.files)
    out = {"dask_version": dask.__version__, "distributed_version": distributed.__version__,
           "pandas_version": pd.__version__, "python": platform.python_version(),
           "workers": 2, "threads_per_worker": 1, "files": len(files),
           "shuffle_partitions": args.shuffle_partitions, "seconds": []}
    with tempfile.TemporaryDirectory() as tmp, \
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                         dashboard_address=None) as cluster, Client(cluster) as client:
        client.submit(noop, -1, pure=False).result()  # warm-up: both workers up and connected
        sample = os.path.join(tmp, "sample.txt")
        with open(files[0], encoding="ascii", errors="replace") as src, \
                open(sample, "w", encoding="ascii") as dst:
            for i, line in enumerate(src):
                if i == 2000:
                    break
                dst.write(line)
        pipeline([sample] * 4, args.shuffle_partitions).compute()  # warm-up of the code path
        km = None
        for rep in range(args.reps):
            t0 = time.perf_counter()
            km = pipeline(files, args.shuffle_partitions).compute()
            seconds = time.perf_counter() - t0
            out["seconds"].append(seconds)
            print(f"dask: taxi distance rep {rep + 1} in {seconds:.3f} s", file=sys.stderr)
    by_id = sorted(km.items(), key=lambda kv: kv[0].encode())
    total = 0.0
    for _, v in by_id:
        total += v
    out["taxis"] = len(by_id)
    out["total_km"] = total
    out["best_seconds"] = min(out["seconds"])
    if args.out:
        with open(args.out, "w", encoding="ascii") as f:
            for k, v in by_id:
                f.write("%s,%.6f\n" % (k, v))
    return out


def main():
    parser = argparse.ArgumentParser(description="Dask side of bench/taxi_distance")
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="distance per taxi of FILES on a LocalCluster")
    r.add_argument("files", nargs="+")
    r.add_argument("--reps", type=int, default=1, help="timed runs (default 1)")
    r.add_argument("--shuffle-partitions", type=int, default=16,
                   help="partitions after the shuffle by taxi id (default 16)")
    r.add_argument("--out", help="write taxi_id,km lines (last run) to this file")
    args = parser.parse_args()
    print(json.dumps(run(args)))


if __name__ == "__main__":
    main()
