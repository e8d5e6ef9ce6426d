#!/usr/bin/env python3
"""Turns a locks_bench JSON result into the tables of docs/BENCHMARKS.md.

usage: lock_ratios.py RESULT.json [MORE.json ...]
RESULT.json comes from locks_bench --benchmark_out=RESULT.json
--benchmark_out_format=json. With repetitions, medians are used.
Given several runs, it prints only the targets of issue 16 across them:
for each case and thread count, the median ratio of the runs, their range,
and in how many runs the target was met. On a two-CPU machine one run can
differ from the next by up to 3x at 2 and 64 threads, so a verdict from
one run is a coin toss; several interleaved runs are the unit to judge by.

Ratios compare panicstop's locks with the peers measured in the same run:
times (lower is better) as "x std::mutex time", throughputs (higher is
better) as "x best peer", where the peers are std::mutex, std::shared_mutex
and absl::Mutex. CasSpinLock is the floor, shown but not a peer.

Next to each throughput table comes the writers' wait: the 99th and 99.9th
percentiles (microseconds) and the longest time (milliseconds) from a
writer's lock() call to its unlock() returning, the counters wwait_p99_us,
wwait_p999_us and wwait_max_us.
"""
import json
import sys

PEERS_EXCLUSIVE = ["std::mutex", "std::shared_mutex", "absl::Mutex"]
PEERS_SHARED = ["std::shared_mutex", "absl::Mutex"]


def load(path):
    """{(kind, lock, threads): benchmark entry}, medians when repeated."""
    with open(path) as f:
        data = json.load(f)
    results, repeated = {}, any(b.get("run_type") == "aggregate" for b in data["benchmarks"])
    for b in data["benchmarks"]:
        if repeated and b.get("aggregate_name") != "median":
            continue
        parts = b["run_name"].split("/")
        threads = next((int(p.split(":")[1]) for p in parts if p.startswith("threads:")), 1)
        results[(parts[0], parts[1], threads)] = b
    return data["context"], results


def ns(entry, field):
    scale = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}[entry["time_unit"]]
    return entry[field] * scale


def locks_of(results, kind):
    """The locks measured for `kind`: panicstop's first, then the peers, then the floor."""
    seen = {lock for (k, lock, _) in results if k == kind}
    order = lambda lock: (not lock.startswith("panicstop::"), lock == "CasSpinLock",
                          PEERS_EXCLUSIVE.index(lock) if lock in PEERS_EXCLUSIVE else 0, lock)
    return sorted(seen, key=order)


def uncontended_table(results, kind, reference):
    locks = locks_of(results, kind)
    if not locks:
        return
    ref = results.get((kind, reference, 1))
    print(f"| lock | CPU ns per pair | x {reference} time |")
    print("|---|---:|---:|")
    for lock in locks:
        t = ns(results[(kind, lock, 1)], "cpu_time")
        ratio = f"{t / ns(ref, 'cpu_time'):.2f}x" if ref else "-"
        print(f"| {lock} | {t:.2f} | {ratio} |")
    print()


def throughput_table(results, kind, peers):
    locks = locks_of(results, kind)
    if not locks:
        return
    ours = [l for l in locks if l.startswith("panicstop::")]
    threads = sorted({t for (k, _, t) in results if k == kind})
    print("| threads | " + " | ".join(f"{l} (M/s)" for l in locks) + " | "
          + " | ".join(f"{l} x best peer" for l in ours) + " |")
    print("|---:|" + "---:|" * (len(locks) + len(ours)))
    for n in threads:
        rate = {l: results[(kind, l, n)]["items_per_second"] / 1e6 for l in locks if (kind, l, n) in results}
        best = max((rate[p] for p in peers if p in rate), default=None)
        row = [f"{rate[l]:.1f}" if l in rate else "-" for l in locks]
        row += [f"{rate[l] / best:.2f}x" if best and l in rate else "-" for l in ours]
        print(f"| {n} | " + " | ".join(row) + " |")
    print()


def writer_wait_table(results, kind):
    locks = [l for l in locks_of(results, kind)
             if any("wwait_p99_us" in results[k] for k in results if k[0] == kind and k[1] == l)]
    if not locks:
        return
    threads = sorted({t for (k, _, t) in results if k == kind})
    print("| threads | " + " | ".join(f"{l} p99 us / p99.9 us / max ms" for l in locks) + " |")
    print("|---:|" + "---:|" * len(locks))
    for n in threads:
        row = []
        for l in locks:
            e = results.get((kind, l, n))
            if e is None or "wwait_p99_us" not in e:
                row.append("-")
            else:
                p999 = f"{e['wwait_p999_us']:.1f}" if "wwait_p999_us" in e else "-"
                row.append(f"{e['wwait_p99_us']:.1f} / {p999} / {e['wwait_max_us'] / 1e3:.1f}")
        print(f"| {n} | " + " | ".join(row) + " |")
    print()


# Issue 16's targets: (kind, lock, the peers it is measured against, the
# least ratio that meets the target).
TARGETS = [
    ("contended", "panicstop::Mutex", ["absl::Mutex"], 1.0),
    ("contended", "panicstop::RwLock", ["absl::Mutex"], 0.9),
    ("contended", "panicstop::SxLock", ["absl::Mutex"], 0.9),
    ("read_mostly", "panicstop::RwLock", PEERS_SHARED, 1.0),
    ("read_mostly", "panicstop::SxLock", PEERS_SHARED, 1.0),
]


def ratio(results, kind, lock, peers, n):
    """Throughput of `lock` over the best of `peers` at n threads, or None."""
    mine = results.get((kind, lock, n))
    rates = [results[(kind, p, n)]["items_per_second"] for p in peers if (kind, p, n) in results]
    if mine is None or not rates:
        return None
    return mine["items_per_second"] / max(rates)


def targets_across_runs(paths):
    runs = [load(p) for p in paths]
    for path, (context, _) in zip(paths, runs):
        print(f"- {path}: {context.get('date', '?')}, load average {context.get('load_avg', '?')}")
    print()
    threads = sorted({t for _, results in runs for (k, _, t) in results if k in ("contended", "read_mostly")})
    print("| case | target | " + " | ".join(f"{n} threads" for n in threads) + " |")
    print("|---|---|" + "---|" * len(threads))
    for kind, lock, peers, least in TARGETS:
        cells = []
        for n in threads:
            r = sorted(x for x in (ratio(results, kind, lock, peers, n) for _, results in runs) if x is not None)
            if not r:
                cells.append("-")
                continue
            mid = r[len(r) // 2] if len(r) % 2 else (r[len(r) // 2 - 1] + r[len(r) // 2]) / 2
            met = sum(x >= least for x in r)
            cells.append(f"{mid:.2f}x ({r[0]:.2f}-{r[-1]:.2f}), {met} of {len(r)}")
        against = " / ".join(peers) if len(peers) > 1 else peers[0]
        print(f"| {kind} {lock} | at least {least:.1f}x {against} | " + " | ".join(cells) + " |")
    print()


def main():
    if len(sys.argv) > 2:
        targets_across_runs(sys.argv[1:])
        return
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    context, results = load(sys.argv[1])
    print(f"Run: {context.get('date', '?')}, {context.get('num_cpus', '?')} CPUs at "
          f"{context.get('mhz_per_cpu', '?')} MHz, load average {context.get('load_avg', '?')}")
    sizes = {k: v for k, v in context.items() if k.startswith("sizeof ")}
    if sizes:
        print("Sizes (bytes): " + ", ".join(f"{k[len('sizeof '):]} {v}" for k, v in sorted(sizes.items())))
    print()
    print("### Uncontended lock+unlock\n")
    uncontended_table(results, "uncontended", "std::mutex")
    print("### Uncontended lock_shared+unlock_shared\n")
    uncontended_table(results, "uncontended_shared", "std::shared_mutex")
    print("### Contended throughput (critical sections per second, all threads)\n")
    throughput_table(results, "contended", PEERS_EXCLUSIVE)
    print("#### Writer wait, contended (one section in 16 timed)\n")
    writer_wait_table(results, "contended")
    print("### Read-mostly throughput (19 of 20 sections shared)\n")
    throughput_table(results, "read_mostly", PEERS_SHARED)
    print("#### Writer wait, read-mostly (every exclusive section timed)\n")
    writer_wait_table(results, "read_mostly")


if __name__ == "__main__":
    main()
