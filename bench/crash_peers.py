#!/usr/bin/env python3
"""crash_peers: the drill workload crashed under each crash handler, one table.

The drill's workload (tools/drill_workload.cpp: workers on Mutexes, an RwLock
and a CondVar queue, a logger whose flush holds "log" behind a quiescence
barrier, a crash hook that appends a final line under "log") is built once
per handler by bench/crash_peers.cmake. For each handler and crash kind this
runs N trials, each in a child process with its own directory and a
deadline (a child still running then is killed with SIGKILL and counted as
a hang), and records:

  output    the handler left something to read: panicstop a text report and
            a core, a kernel core file, or for the others at least one stack
            trace in what the process wrote
  threads   threads whose stack is in that output, out of threads alive
            before the crash: panicstop, the threads its report shows stopped
            or panicking (registers saved where they stood); kernel core,
            `gdb -batch -ex 'info threads'` (else `panicstop show --json`);
            abseil, glog, backward-cpp, the stack traces they printed, one
            per thread
  hook      the hook's final line made it ("n/a": the handler runs no user
            code during a crash)
  time      from the crash (CLOCK_MONOTONIC, told by the workload) to the
            process's end, for trials that ended
  complete  ended before the deadline, output, every live thread's stack,
            and the final line where the handler runs hooks

Seeds are the same for every handler: trial i uses seed i+1, so every
handler sees the same victim and delay.

Exit status: 0 when every panicstop trial (stopping on) was complete, 1
otherwise, 2 usage error.

Usage: crash_peers [--trials N] [--peer-trials M] [--kinds K,..] [--handlers H,..]
                   [--deadline-ms MS] [--build DIR] [--keep DIR]
"""

import argparse
import json
import os
import re
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

KINDS = ["segv", "panic", "abort", "overflow", "double", "hook"]


class Handler:
    def __init__(self, name, binary, args=(), has_hook=True, stops=False, kernel_core=False, counter=None):
        self.name, self.binary, self.args = name, binary, list(args)
        self.has_hook, self.stops, self.kernel_core, self.counter = has_hook, stops, kernel_core, counter


def distinct(pattern):
    """Counts distinct first groups of `pattern` in the output: one per thread."""
    regex = re.compile(pattern, re.M)
    return lambda text: len(set(regex.findall(text)))


def handlers(build):
    workload = os.path.join(build, "tools", "panicstop-drill-workload")
    bench = os.path.join(build, "bench")
    return [
        Handler("panicstop", workload, stops=True),
        Handler("panicstop-no-stop", workload, ["--no-stop"]),
        # abseil lets one thread into its handler and prints that thread's
        # stack ("PC: @ ..." and frames); a second faulting thread only gets a
        # "raised ... while already in AbslFailureSignalHandler()" line, and a
        # fault inside the writer prints a second block for the same thread.
        # Its blocks name no thread, so: one thread if any stack at all.
        Handler("absl", os.path.join(bench, "crash_peers_absl"), counter=lambda t: min(1, len(re.findall(r"^PC: @", t, re.M)))),
        # glog: "*** SIGSEGV (@0x0) received by PID P (TID 0x..) from PID 0;
        # stack trace: ***" per thread in its signal handler, and for
        # LOG(FATAL) "*** Check failure stack trace: ***" for the thread that
        # logged it (glog then aborts past its own signal handler).
        Handler("glog", os.path.join(bench, "crash_peers_glog"),
                counter=lambda t: distinct(r"received by PID \d+ \(TID (0x[0-9a-f]+)\).*stack trace")(t)
                + len(re.findall(r"^\*\*\* Check failure stack trace: \*\*\*", t, re.M))),
        # backward-cpp: "Stack trace (most recent call last) in thread TID:".
        Handler("backward-cpp", os.path.join(bench, "crash_peers_backward"), has_hook=False,
                counter=distinct(r"^Stack trace \(most recent call last\) in thread (\d+):")),
        Handler("kernel-core", os.path.join(bench, "crash_peers_kernel_core"), has_hook=False, kernel_core=True),
    ]


def run_child(argv, cwd, env, output, deadline_s, core_limit):
    """Runs argv; returns (hung, end_ns, status). Ends are seen through a pidfd, not polled."""
    def child_setup():
        resource.setrlimit(resource.RLIMIT_CORE, (core_limit, core_limit))
    with open(output, "wb") as out:
        p = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             preexec_fn=child_setup, start_new_session=True)
    fd = os.pidfd_open(p.pid)
    try:
        readable, _, _ = select.select([fd], [], [], deadline_s)
        end_ns = time.monotonic_ns()
        hung = not readable
        if hung:
            os.killpg(p.pid, signal.SIGKILL)
        status = p.wait()
    finally:
        os.close(fd)
    return hung, end_ns, status


def run_tool(argv, timeout_s=60):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s).stdout
    except (subprocess.TimeoutExpired, OSError):
        return ""


def panicstop_report_threads(panicstop, report):
    """Threads the text report shows stopped or panicking, and whether it reads back."""
    text = run_tool([panicstop, "show", "--json", report])
    try:
        threads = json.loads(text)["threads"]
    except (ValueError, KeyError, TypeError):
        return 0, False
    return sum(1 for t in threads if t.get("state") in ("stopped", "panicking")), True


def core_threads(gdb, panicstop, binary, core):
    if gdb:
        out = run_tool([gdb, "-nx", "-batch", "-ex", "info threads", binary, core])
        return len(re.findall(r"^\*?\s+\d+\s+(?:Thread|LWP|process)\b", out, re.M))
    try:
        return len(json.loads(run_tool([panicstop, "show", "--json", core]))["threads"])
    except (ValueError, KeyError, TypeError):
        return 0


def trial(h, kind, seed, opts, tools, trial_dir):
    os.makedirs(trial_dir, exist_ok=True)
    # The comparison reads cores: PANICSTOP_CORE_LIMIT=ignore writes panicstop's under `ulimit -c 0` too.
    env = dict(os.environ, PANICSTOP_DUMP_DIR=trial_dir, PANICSTOP_CORE_LIMIT="ignore")
    argv = [h.binary, "--crash", kind, "--seed", str(seed)] + h.args
    log = os.path.join(trial_dir, "output.log")
    unlimited = resource.RLIM_INFINITY
    hung, end_ns, status = run_child(argv, trial_dir, env, log, opts.deadline_ms / 1000.0,
                                     unlimited if h.kernel_core else 0)
    with open(log, "r", errors="replace") as f:
        text = f.read()
    r = {"hung": hung, "status": status, "alive": 0, "threads": 0, "output": False, "ms": None,
         "hook": "drill-workload: hook finished" in text}
    m = re.search(r"drill-workload: threads alive: (\d+)", text)
    if m:
        r["alive"] = int(m.group(1))
    m = re.search(r"drill-workload: crash at (\d+)", text)
    if m and not hung:
        r["ms"] = (end_ns - int(m.group(1))) / 1e6
    files = os.listdir(trial_dir)
    if h.kernel_core:
        cores = [f for f in files if f == "core" or f.startswith("core.")]
        if cores:
            r["output"] = True
            r["threads"] = core_threads(tools["gdb"], tools["panicstop"], h.binary, os.path.join(trial_dir, cores[0]))
    elif h.counter is None:  # panicstop: text report and core
        reports = [f for f in files if f.endswith(".txt")]
        cores = [f for f in files if f.endswith(".core")]
        if reports:
            r["threads"], read = panicstop_report_threads(tools["panicstop"], os.path.join(trial_dir, reports[0]))
            r["output"] = read and bool(cores)
    else:
        r["threads"] = h.counter(text)
        r["output"] = r["threads"] > 0
    r["complete"] = (not hung and r["output"] and r["alive"] > 0 and r["threads"] >= r["alive"]
                     and (r["hook"] or not h.has_hook))
    return r


def row(name, kind, results, has_hook):
    n = len(results)
    count = lambda key: sum(1 for r in results if r[key])
    ms = sorted(r["ms"] for r in results if r["ms"] is not None)
    median = f"{statistics.median(ms):.0f} ms" if ms else "-"
    worst = f"{ms[-1]:.0f} ms" if ms else "-"
    hook = f"{count('hook')}/{n}" if has_hook else "n/a"
    threads = f"{sum(r['threads'] for r in results)}/{sum(r['alive'] for r in results)}"
    return [name, kind, f"{count('complete')}/{n}", f"{count('output')}/{n}", str(count("hung")), threads, hook,
            median, worst]


def print_table(rows):
    head = ["handler", "crash", "complete", "output", "hangs", "threads captured", "final line", "median end",
            "slowest end"]
    widths = [max(len(str(x[i])) for x in rows + [head] if i < len(x) and len(x) == len(head))
              for i in range(len(head))]
    for line in [head] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip())


def kernel_core_unavailable():
    """Why the kernel cannot leave a core in the trial directory here, or ""."""
    try:
        with open("/proc/sys/kernel/core_pattern") as f:
            pattern = f.read().strip()
    except OSError as e:
        return f"cannot read /proc/sys/kernel/core_pattern ({e.strerror})"
    if pattern.startswith("|"):
        return f"core_pattern pipes cores to a helper ({pattern.split()[0][1:]}), not to a file"
    if resource.getrlimit(resource.RLIMIT_CORE)[1] == 0:
        return "the hard RLIMIT_CORE is 0"
    return ""


def find_gdb():
    return shutil.which("gdb") or ""


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    # Installed beside the binaries as <build>/bench/crash_peers; run from the
    # source tree, it needs --build.
    default_build = os.path.dirname(here) if os.path.exists(os.path.join(here, "crash_peers_kernel_core")) else None
    ap = argparse.ArgumentParser(prog="crash_peers", description=__doc__.split("\n\n")[0],
                                 epilog="Handlers: panicstop, panicstop-no-stop, absl, glog, backward-cpp, kernel-core. "
                                        "A peer whose package was missing at build time is skipped.")
    ap.add_argument("--trials", type=int, default=200, help="trials per crash kind for panicstop (default 200)")
    ap.add_argument("--peer-trials", type=int, default=None,
                    help="trials per crash kind for every other handler (default: --trials, at most 20)")
    ap.add_argument("--kinds", default=",".join(KINDS), help="crash kinds (default: all: %(default)s)")
    ap.add_argument("--handlers", default="", help="comma-separated handler names (default: all built)")
    ap.add_argument("--deadline-ms", type=int, default=4000,
                    help="kill a trial still running after MS and count a hang (default 4000)")
    ap.add_argument("--build", default=default_build, help="the CMake build directory (built with "
                    "-DPANICSTOP_BUILD_BENCH=ON, target crash_peers)")
    ap.add_argument("--keep", default="", help="keep every trial's files under DIR (default: only incomplete "
                    "panicstop trials are kept, in a new directory under /tmp)")
    opts = ap.parse_args()
    if not opts.build:
        ap.error("--build DIR is needed when run from the source tree")
    opts.build = os.path.abspath(opts.build)  # children run in their trial directories
    peer_trials = opts.peer_trials if opts.peer_trials is not None else min(opts.trials, 20)
    kinds = [k for k in opts.kinds.split(",") if k]
    for k in kinds:
        if k not in KINDS:
            ap.error(f"unknown crash kind '{k}' (kinds: {', '.join(KINDS)})")
    chosen = []
    wanted = [w.strip() for w in opts.handlers.split(",") if w.strip()]
    known = [h.name for h in handlers(opts.build)]
    for w in wanted:
        if w not in known:
            ap.error(f"unknown handler '{w}' (handlers: {', '.join(known)})")
    for h in handlers(opts.build):
        if wanted and h.name not in wanted:
            continue
        if not os.access(h.binary, os.X_OK):
            print(f"crash_peers: {h.name}: {h.binary} not built (its package was not found): skipped",
                  file=sys.stderr)
            continue
        chosen.append(h)
    if not chosen:
        ap.error("no handler to run")
    tools = {"gdb": find_gdb(), "panicstop": os.path.join(opts.build, "tools", "panicstop")}
    base = opts.keep or tempfile.mkdtemp(prefix="crash-peers.")
    os.makedirs(base, exist_ok=True)

    rows = []
    for h in [h for h in chosen if h.kernel_core]:
        reason = kernel_core_unavailable()
        if reason:
            print(f"crash_peers: kernel-core: not available here: {reason}", file=sys.stderr)
            rows.append([h.name, "-", f"not available here: {reason}"])
            chosen.remove(h)

    started = time.monotonic()
    stopping_complete = True
    for h in chosen:
        n = opts.trials if h.stops else peer_trials
        every = []
        for kind in kinds:
            if kind == "hook" and not h.has_hook:
                continue
            results = []
            for i in range(n):
                print(f"\rcrash_peers: {h.name} {kind} {i + 1}/{n}  ({time.monotonic() - started:.0f} s)   ",
                      end="", file=sys.stderr, flush=True)
                d = os.path.join(base, h.name, kind, f"trial-{i + 1}")
                r = trial(h, kind, i + 1, opts, tools, d)
                results.append(r)
                if not opts.keep and (r["complete"] or not h.stops):
                    shutil.rmtree(d, ignore_errors=True)
            rows.append(row(h.name, kind, results, h.has_hook))
            every += results
            if h.stops:
                stopping_complete = stopping_complete and all(r["complete"] for r in results)
        if len(kinds) > 1:
            rows.append(row(h.name, "all", every, h.has_hook))
    print(file=sys.stderr)
    print(f"deadline {opts.deadline_ms} ms; panicstop {opts.trials} trials per kind, other handlers {peer_trials}; "
          f"gdb: {'yes' if tools['gdb'] else 'no'}; wall {time.monotonic() - started:.0f} s")
    with open("/proc/sys/kernel/core_pattern") as f:
        print(f"kernel core_pattern: {f.read().strip()!r}")
    print_table(rows)
    if opts.keep or any(files for _, _, files in os.walk(base)):
        print(f"files: {base}")
    else:
        shutil.rmtree(base, ignore_errors=True)
    return 0 if stopping_complete else 1


if __name__ == "__main__":
    sys.exit(main())
