#!/usr/bin/env python3
"""streaming_status.py -- bench/streaming's reader of the driver's streaming status endpoint.

The driver keeps the last 64 batches of a query (/api/v1/streaming/queries/{id}/batches,
docs/status-api.md); at 20 ms a batch that is 1.3 s, so `poll` asks every 0.25 s and merges
what it sees by batch number. Standard library only.

  poll STATUS NAME OUT     until SIGTERM (or --max-s): merge NAME's batches, keep the latest
                           query document and the largest lag seen; write OUT (JSON) at the end
  wait STATUS NAME COND    until COND holds or --timeout-s passes (exit 1, saying what it saw):
                           running   the query is registered and running
                           drained   it read --records records, its last batch is committed
                                     (it waits for its trigger), with the watermark of everything it read (the windows that
                                     the records make final are out; --delay-ms, --slide-ms:
                                     the query's window)
  tasks STATUS NAME        task figures of NAME's batch jobs the driver still lists (its last
                           100 jobs): tasks per job, task and job durations, and how busy the
                           --slots (2) slots were over each stage
  summary OUT [--records N]
                           key=value lines from a poll's OUT: batch counts, percentiles of the
                           batch phases, and with --records the rate over the batches that read
                           records (first plan to last commit), checked to cover N records
"""
import argparse
import json
import signal
import sys
import time
import urllib.request


def get(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.load(r)


def find_query(status, name):
    """The query document of NAME, or None."""
    try:
        for q in get(status + "/api/v1/streaming/queries"):
            if q.get("name") == name:
                return q
    except (OSError, ValueError):
        pass
    return None


def poll(args):
    batches, last, lag_max = {}, None, 0
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    deadline = time.monotonic() + args.max_s
    while not stop and time.monotonic() < deadline:
        q = find_query(args.status, args.name)
        if q:
            last = q
            lag_max = max(lag_max, q.get("lag") or 0)
            try:
                for b in get("%s/api/v1/streaming/queries/%d/batches" % (args.status, q["id"])):
                    batches[b["batch"]] = b
            except (OSError, ValueError):
                pass
        time.sleep(args.every)
    with open(args.out, "w") as f:
        json.dump({"query": last, "lag_max": lag_max,
                   "batches": [batches[k] for k in sorted(batches)]}, f)


def windows_out(q, delay_ms, slide_ms):
    """Whether the windows that q's records make final are out: its watermark is in the same
    slide as the one everything read gives (windows end at multiples of the slide, and the
    driver runs a batch without records only when the watermark passes one of those ends)."""
    wm, top = q.get("watermark_ms"), q.get("event_time_max_ms")
    return wm is not None and top is not None and (top - delay_ms) // slide_ms == wm // slide_ms


def wait(args):
    deadline = time.monotonic() + args.timeout_s
    q = None
    while time.monotonic() < deadline:
        q = find_query(args.status, args.name)
        if q and q.get("state") == "failed":
            break
        if q and args.cond == "running" and q.get("state") == "running":
            return 0
        if (q and args.cond == "drained" and q.get("records_in", 0) >= args.records and
                q.get("phase") == "idle" and
                (not q.get("windows") or windows_out(q, args.delay_ms, args.slide_ms))):
            return 0
        time.sleep(0.1)
    print("streaming_status: query %s not %s within %d s; last seen: %s" %
          (args.name, args.cond, args.timeout_s, json.dumps(q)), file=sys.stderr)
    return 1


def pct(values, q):
    """Nearest-rank percentile (the ceil(q * n)-th smallest)."""
    v = sorted(values)
    if not v:
        return float("nan")
    k = max(1, min(len(v), int(-(-q * len(v) // 1))))
    return v[k - 1]


def summary(args):
    d = json.load(open(args.out))
    bs = d["batches"]
    q = d["query"] or {}
    out = {"batches_seen": len(bs), "batches": q.get("batches", 0),
           "records_in": q.get("records_in", 0), "records_out": q.get("records_out", 0),
           "late": q.get("late_records", 0), "lag_max": d["lag_max"],
           "watermark_ms": q.get("watermark_ms")}
    data = [b for b in bs if b["records_in"] > 0]
    out["data_batches"] = len(data)
    # the batches kept by the driver are numbered without gaps: a gap is a batch not seen
    nums = [b["batch"] for b in bs]
    out["gaps"] = (nums[-1] - nums[0] + 1 - len(nums)) if nums else 0
    for phase in ("plan", "log", "queue", "run", "commit", "total"):
        xs = [b["durations_ms"][phase] for b in data]
        out[phase + "_p50"] = "%.2f" % pct(xs, 0.5)
        out[phase + "_p99"] = "%.2f" % pct(xs, 0.99)
    xs = [b["scheduling_delay_ms"] for b in data]
    out["delay_p50"] = "%.2f" % pct(xs, 0.5)
    out["delay_p99"] = "%.2f" % pct(xs, 0.99)
    out["records_per_batch_p50"] = "%.0f" % pct([b["records_in"] for b in data], 0.5)
    if args.records and data:
        seen = sum(b["records_in"] for b in data)
        first = data[0]["started_unix_ms"]
        end = max(b["started_unix_ms"] + b["durations_ms"]["total"] for b in data)
        out["records_seen"] = seen
        out["span_s"] = "%.3f" % ((end - first) / 1000.0)
        out["rate"] = "%.0f" % (seen / ((end - first) / 1000.0)) if end > first else "nan"
        out["complete"] = int(seen == args.records and out["gaps"] == 0)
    for k, v in out.items():
        print("%s=%s" % (k, "" if v is None else v))
    return 0


def tasks(args):
    """Task figures of NAME's batch jobs still in the driver's /api/v1/jobs (the last 100 jobs)."""
    jobs = get(args.status + "/api/v1/jobs")
    jobs = jobs if isinstance(jobs, list) else jobs.get("jobs", [])
    mine = [j for j in jobs if j.get("name", "").startswith(args.name + " batch ") and
            j.get("state") == "succeeded" and j.get("records_in", 0) > 0]
    durations, per_job, job_ms, busy, timelines = [], [], [], [], []
    for j in mine:
        n = 0
        for st in j.get("stages", []):
            d = get("%s/api/v1/stages/%d" % (args.status, st["id"]))
            tl = d.get("task_list", [])
            ts = [t["duration_ms"] for t in tl if "duration_ms" in t]
            if len(timelines) < 5:  # a few stages task by task, in launch order
                timelines.append("stage %d (%.2f ms): " % (st["id"], st.get("duration_ms") or 0) +
                                 ", ".join("p%d@e%d +%.2f %.2fms %s" % (
                                     t["partition"], t.get("executor", 0), t.get("launched_ms", 0),
                                     t.get("duration_ms", 0), t.get("locality", ""))
                                     for t in sorted(tl, key=lambda t: t.get("launched_ms", 0))))
            durations += ts
            n += len(ts)
            if st.get("duration_ms"):
                busy.append(sum(ts) / (st["duration_ms"] * args.slots))
        per_job.append(n)
        job_ms.append(j.get("duration_ms", 0))
    print("jobs=%d" % len(mine))
    if mine:
        print("tasks_per_job=%.0f" % pct(per_job, 0.5))
        print("task_p50=%.2f" % pct(durations, 0.5))
        print("task_p99=%.2f" % pct(durations, 0.99))
        print("job_p50=%.2f" % pct(job_ms, 0.5))
        print("slot_busy_p50=%.0f" % (100 * pct(busy, 0.5)))
        for line in timelines:
            print("timeline=" + line)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("poll")
    a.add_argument("status")
    a.add_argument("name")
    a.add_argument("out")
    a.add_argument("--every", type=float, default=0.25)
    a.add_argument("--max-s", type=float, default=600)
    a = sub.add_parser("wait")
    a.add_argument("status")
    a.add_argument("name")
    a.add_argument("cond", choices=["running", "drained"])
    a.add_argument("--records", type=int, default=0)
    a.add_argument("--delay-ms", type=int, default=0)
    a.add_argument("--slide-ms", type=int, default=1)
    a.add_argument("--timeout-s", type=int, default=60)
    a = sub.add_parser("summary")
    a.add_argument("out")
    a.add_argument("--records", type=int, default=0)
    a = sub.add_parser("tasks")
    a.add_argument("status")
    a.add_argument("name")
    a.add_argument("--slots", type=int, default=2)
    args = p.parse_args()
    return {"poll": poll, "wait": wait, "summary": summary, "tasks": tasks}[args.cmd](args) or 0


if __name__ == "__main__":
    sys.exit(main())
