#!/usr/bin/env python3
"""Acceptance test: real multithreaded Debian programs, in their default
configuration, under `panicstop run`.

For each crash it checks what a user would check: a .txt and a .core appear
for the crashed pid, the report starts with "panic:", it lists exactly the
threads /proc showed just before the crash, every one of them stopped, gdb
opens the core with the same threads and no zeroed registers, and the process
died of the signal it was sent. Each server also runs one bounded client loop
with and without panicstop; the requests per second are printed, not asserted.

Every check prints one line:
  realworld: PROGRAM/CASE: PASS|FAIL|NOTE what: detail
The exit status is 0 if nothing failed, 1 if something did, 77 if a program
the selected tests need is not installed (ctest reports a skip).

Examples:
  python3 tests/realworld/realworld.py --build build redis
  python3 tests/realworld/realworld.py --build build --keep all
"""
import argparse
import glob
import http.client
import os
import re
import shutil
import pwd
import signal
import socket
import subprocess
import sys
import tempfile
import time

import postgres  # a server of forked processes that recovers from a backend's crash
import runtimes  # sbcl, gnat, ruby, go, mono, rust: runtimes that take faults for themselves

HERE = os.path.dirname(os.path.abspath(__file__))
SKIP = 77

# How long a request loop may run, and how many requests it makes at most:
# both bounds hold, whichever is reached first ends the loop.
LOOP_COUNT = 2000
LOOP_SECONDS = 3.0
DEATH_SECONDS = 60.0       # signal to death: redis's own handler memory-tests for ~25 s
READY_SECONDS = 60.0       # from start to answering (JVM and mariadbd on a busy machine)
SIGRTMAX = signal.SIGRTMAX
RESERVED = {SIGRTMAX - 2: "RTMAX-2", SIGRTMAX - 3: "RTMAX-3", SIGRTMAX - 4: "RTMAX-4", SIGRTMAX - 5: "RTMAX-5"}


class Timeout(Exception):
    pass


def wait_for(cond, seconds, what, interval=0.02):
    """Polls cond until it returns something true, or raises Timeout."""
    deadline = time.monotonic() + seconds
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Timeout("timed out after %.0fs waiting for %s" % (seconds, what))
        time.sleep(interval)


def wait_port(popen, port, what):
    """Waits until port accepts, failing at once if the program exits first."""
    def ready():
        if popen.poll() is not None:
            raise RuntimeError("%s exited with status %s before it listened on %d" % (what, popen.returncode, port))
        return port_open(port)
    wait_for(ready, READY_SECONDS, "%s on port %d" % (what, port), interval=0.05)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def read(path, default=""):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return default


def tids(pid):
    try:
        return {int(t) for t in os.listdir("/proc/%d/task" % pid)}
    except OSError:
        return set()


def children(pid):
    out = set()
    for tid in tids(pid):
        out.update(int(c) for c in read("/proc/%d/task/%d/children" % (pid, tid)).split())
    return out


def alive(pid):
    """True while pid exists and is not a zombie."""
    stat = read("/proc/%d/stat" % pid)
    if not stat:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def owner(pid):
    """The user name of pid's effective uid, or its number."""
    m = re.search(r"^Uid:\s+\d+\s+(\d+)", read("/proc/%d/status" % pid), re.M)
    if not m:
        return "?"
    try:
        return pwd.getpwuid(int(m.group(1))).pw_name
    except KeyError:
        return m.group(1)


def exe_of(pid):
    try:
        return os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return ""


def signame(sig):
    if sig is None:
        return "none"
    if sig == 0:
        return "a normal exit"
    if SIGRTMAX - 5 <= sig <= SIGRTMAX:
        return "SIGRTMAX-%d" % (SIGRTMAX - sig) if sig != SIGRTMAX else "SIGRTMAX"
    try:
        return signal.Signals(sig).name
    except ValueError:
        return "signal %d" % sig


def sigmask_names(hexmask):
    mask = int(hexmask, 16)
    return [signame(n) for n in range(1, 65) if mask & (1 << (n - 1))]


class Suite:
    def __init__(self, args):
        self.args = args
        self.tool = args.tool
        self.preload = args.preload
        self.failures = []
        self.root = tempfile.mkdtemp(prefix="panicstop-realworld-")
        self.procs = []      # Popen objects, each the leader of its own session
        self.pids = set()    # daemons that left their session: killed by pid
        self.program = ""

    # --- verdicts ----------------------------------------------------------
    def say(self, case, kind, what, detail=""):
        line = "realworld: %s/%s: %s %s%s" % (self.program, case, kind, what, ": " + detail if detail else "")
        print(line, flush=True)
        if kind == "FAIL":
            self.failures.append(line)

    def check(self, case, ok, what, detail=""):
        self.say(case, "PASS" if ok else "FAIL", what, detail)
        return ok

    # --- processes ---------------------------------------------------------
    def tmpdir(self, name):
        path = os.path.join(self.root, self.program, name)
        os.makedirs(path, exist_ok=True)
        return path

    def start(self, argv, under_panicstop, workdir, dump_dir=None, env=None, stdout=None, wrapper=()):
        """Starts argv (under `panicstop run` if asked, the whole behind
        wrapper, a command that execs the rest) in its own session.
        Returns (Popen, stderr path)."""
        cmd = list(argv)
        if under_panicstop:
            cmd = [self.tool, "run", "--preload", self.preload, "--dump-dir", dump_dir, "--"] + cmd
        cmd = list(wrapper) + cmd
        log = os.path.join(workdir, "stderr.log")
        full_env = dict(os.environ)
        full_env.pop("LD_PRELOAD", None)
        # The suite runs inside ctest, which sets the dump dir for gtest crash
        # tests; here every program chooses its own with --dump-dir.
        full_env.pop("PANICSTOP_DUMP_DIR", None)
        # The checks read the core: as a user who wants one despite the usual
        # soft `ulimit -c 0` would, say so instead of raising the limit (which
        # would also make the kernel write its own core of every crash).
        full_env["PANICSTOP_CORE_LIMIT"] = "ignore"
        full_env.update(env or {})
        with open(log, "wb") as err:
            p = subprocess.Popen(cmd, cwd=workdir, env=full_env, stdin=subprocess.DEVNULL,
                                 stdout=stdout if stdout is not None else err, stderr=err,
                                 start_new_session=True)
        self.procs.append(p)
        return p, log

    def program_pid(self, popen, under_panicstop, exe_name):
        """The pid of the program itself: `panicstop run` forks it, so under
        it the program is run's child once it has exec'd."""
        if not under_panicstop:
            return popen.pid

        tool = os.path.realpath(self.tool)

        def exec_done():
            # exe_name is only for messages: Debian's redis-server, for one, is
            # a link to redis-check-rdb.
            for c in children(popen.pid):
                exe = exe_of(c)
                if exe and exe != tool:
                    return c
            if popen.poll() is not None:
                raise RuntimeError("panicstop run exited with %s before %s started" % (popen.returncode, exe_name))
            return None
        return wait_for(exec_done, READY_SECONDS, "%s to start under panicstop run" % exe_name)

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    pass
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        # A daemon's master replaces a crashed worker with a new one that no
        # one recorded, and its workers outlive a SIGKILLed master.
        for pid in list(self.pids):
            self.pids.update(children(pid))
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.procs, self.pids = [], set()

    # --- what a user checks after a crash ----------------------------------
    def sample_threads(self, case, pid):
        """The tids of pid just before the crash: two samples in a row that
        agree (some programs start and stop threads), within a bound. Returns
        (stable tids, tids seen in only one sample)."""
        prev = tids(pid)
        deadline = time.monotonic() + 3.0
        while True:
            time.sleep(0.05)
            cur = tids(pid)
            if cur == prev or time.monotonic() > deadline:
                break
            prev = cur
        self.note_masks(case, pid, cur & prev)
        return cur & prev, cur ^ prev

    def note_masks(self, case, pid, tidset):
        groups = {}
        for tid in sorted(tidset):
            status = read("/proc/%d/task/%d/status" % (pid, tid))
            m = re.search(r"^SigBlk:\s*(\S+)", status, re.M)
            name = read("/proc/%d/task/%d/comm" % (pid, tid)).strip()
            if m:
                groups.setdefault(m.group(1), []).append("%d(%s)" % (tid, name))
        parts = []
        for mask, who in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            names = sigmask_names(mask)
            shown = ",".join(names) if len(names) <= 12 else "%d signals incl. %s" % (
                len(names), ",".join(n for n in names if n.startswith("SIGRT") or n in ("SIGSEGV", "SIGABRT")))
            parts.append("%d thread(s) block [%s]%s" % (len(who), shown or "nothing",
                                                        " e.g. " + " ".join(who[:3]) if who else ""))
        self.say(case, "NOTE", "SigBlk of pid %d" % pid, "; ".join(parts))

    def dumps_for(self, dump_dir, pid=None, kinds=("txt", "core")):
        """The newest dump of each kind (file suffix) in dump_dir, of process
        pid (None: any), each None where there is none."""
        found = []
        for kind in kinds:
            paths = sorted(glob.glob(os.path.join(dump_dir, "panicstop-*-%s-*.%s" % (pid or "*", kind))))
            found.append(paths[-1] if paths else None)
        return tuple(found)

    def parse_report(self, path):
        text = read(path)
        threads = {}
        for m in re.finditer(r"^thread (\d+) \((.*?)\) \[(\w+)\]", text, re.M):
            threads[int(m.group(1))] = (m.group(2), m.group(3))
        return text, threads

    def gdb_threads(self, exe, core):
        """gdb's view of the core: (thread count, lines whose pc is zero, raw)."""
        env = dict(os.environ, DEBUGINFOD_URLS="")
        try:
            out = subprocess.run(["gdb", "-nx", "-batch", "-iex", "set debuginfod enabled off",
                                  "-ex", "info threads", exe, core],
                                 capture_output=True, text=True, timeout=90, env=env, errors="replace")
        except subprocess.TimeoutExpired:
            return None, [], "gdb timed out"
        lines = [l for l in out.stdout.splitlines() if re.match(r"^\*?\s+\d+\s+(Thread|LWP|process)", l)]
        zero = [l.strip() for l in lines if "0x0000000000000000" in l]
        return len(lines), zero, out.stdout + out.stderr

    def check_dump(self, case, pid, exe, dump_dir, expected, transient, stderr_paths, live=False):
        """The report and core of pid: threads, states, gdb."""
        txt, core = self.dumps_for(dump_dir, pid)
        self.check(case, txt is not None and core is not None, "dump files",
                   "%s, %s" % (os.path.basename(txt or "no .txt"), os.path.basename(core or "no .core"))
                   if txt or core else "no panicstop-*-%d-*.txt/.core in %s" % (pid, dump_dir))
        stderr = "".join(read(p) for p in stderr_paths)
        if not live:
            wrote = re.findall(r"^panicstop: wrote (\S+)", stderr, re.M)
            mine = [w for w in wrote if "-%d-" % pid in os.path.basename(w)]
            self.check(case, len(mine) >= 1, "announced on stderr",
                       ", ".join(os.path.basename(w) for w in mine) or "no 'panicstop: wrote' line for pid %d" % pid)
        if txt is None:
            self.check(case, False, "report", "no report to read")
            # Whose handler ran instead: the program's own crash report, if any.
            own = [l.strip() for l in stderr.splitlines()
                   if re.search(r"signal|crash|bug report|fatal", l, re.I) and not l.startswith("panicstop")]
            if own:
                self.say(case, "NOTE", "the program's stderr says", " | ".join(own[:3])[:300])
            return
        text, reported = self.parse_report(txt)
        first = text.splitlines()[0] if text else ""
        self.check(case, first.startswith("panic:"), "report first line", first[:120])
        want = set(expected)
        got = set(reported)
        missing = want - got
        extra = got - want - transient
        # The program's own crash handler runs before the panic and may end
        # threads on purpose (redis cancels its bio threads before its bug
        # report): those are gone when the world stops. Said, not hidden.
        if missing and "the program's own handler ran first" in first:
            self.say(case, "NOTE", "threads ended by the program's own crash handler before the panic",
                     " ".join(str(t) for t in sorted(missing)))
            missing = set()
        self.check(case, not missing and not extra, "threads = /proc/%d/task" % pid,
                   "%d reported, %d in /proc%s%s" % (len(got), len(want),
                   "; missing " + " ".join(str(t) for t in sorted(missing)) if missing else "",
                   "; extra " + " ".join(str(t) for t in sorted(extra)) if extra else ""))
        ok_states = ("dumping", "stopped") if live else ("panicking", "stopped")
        bad = {t: s for t, s in reported.items() if s[1] not in ok_states}
        banner = [l for l in stderr.splitlines() if "did not stop" in l and ("(%d)" % pid in l or not live)]
        summary = re.search(r"^\d+ threads: .*$", text, re.M)
        self.check(case, not bad and not (banner and not live), "every thread stopped",
                   (summary.group(0) if summary else "no thread summary line") +
                   ("; " + " ".join("%d(%s)=%s" % (t, n, s) for t, (n, s) in sorted(bad.items())[:8]) if bad else "") +
                   ("; stderr: " + banner[0].strip()[:200] if banner and not live else ""))
        if core is None:
            self.check(case, False, "core in gdb", "no core")
            return
        count, zero, raw = self.gdb_threads(exe, core)
        if count is None:
            self.check(case, False, "core in gdb", raw)
            return
        self.check(case, count == len(reported) and count > 0 and not zero, "core in gdb",
                   "%d threads in gdb, %d in report%s" % (count, len(reported),
                   "; pc 0: " + " | ".join(zero[:3]) if zero else ""))

    def crash(self, case, pid, sig, trigger, died, dump_dir, stderr_paths):
        """Samples pid's threads, runs trigger (or sends sig), then checks the
        death and the dump. died() returns the signal pid died of, or None
        while it lives."""
        exe = exe_of(pid)
        expected, transient = self.sample_threads(case, pid)
        if trigger is None:
            os.kill(pid, sig)
        else:
            trigger()
        start = time.monotonic()
        # died() learns the signal, if at all, a little after pid is gone.
        def gone():
            sig_ = died()
            if sig_ is not None:
                return (sig_,)
            return None if alive(pid) else (-1,)
        try:
            got = wait_for(gone, DEATH_SECONDS, "pid %d to die" % pid)[0]
        except Timeout as e:
            self.check(case, False, "died of %s" % signame(sig), str(e))
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
            got = None
        else:
            if got == -1:  # gone, but how is not known yet: give died() a moment to learn it
                try:
                    got = wait_for(lambda: (died(),) if died() is not None else None, 5.0,
                                   "the death signal of %d" % pid)[0]
                except Timeout:
                    got = None
            self.check(case, got == sig, "died of %s" % signame(sig),
                       "died of %s after %.1fs" % (signame(got), time.monotonic() - start))
        self.check_dump(case, pid, exe, dump_dir, expected, transient, stderr_paths)

    def exit_signal(self, popen, under_panicstop):
        """For died(): the signal popen's program died of (run reports 128+N)."""
        def died():
            rc = popen.poll()
            if rc is None:
                return None
            if under_panicstop:
                return rc - 128 if rc > 128 else 0
            return -rc if rc < 0 else 0
        return died

    def throughput(self, case, loop, label):
        """Runs loop(count, seconds) -> number of correct requests; prints the rate."""
        start = time.monotonic()
        try:
            done = loop(LOOP_COUNT, LOOP_SECONDS)
        except Exception as e:  # a wrong answer or a dead connection is a failure
            self.check(case, False, "%s requests" % label, "%s: %s" % (type(e).__name__, e))
            return None
        rate = done / max(time.monotonic() - start, 1e-6)
        self.check(case, done > 0, "%s requests" % label, "%d correct answers, %.0f req/s" % (done, rate))
        return rate

    def ratio(self, case, base, under):
        if base and under:
            self.say(case, "NOTE", "throughput", "%.0f req/s without panicstop, %.0f with, ratio %.2f"
                     % (base, under, under / base))


# --- clients: bounded in count and in time ---------------------------------
def bounded(count, seconds, step):
    deadline = time.monotonic() + seconds
    done = 0
    while done < count and time.monotonic() < deadline:
        step(done)
        done += 1
    return done


class LineClient:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.f = self.sock.makefile("rb")

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        l = self.f.readline()
        if not l:
            raise ConnectionError("connection closed")
        return l

    def exact(self, n):
        return self.f.read(n)

    def close(self):
        self.f.close()
        self.sock.close()


def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def redis_loop(port):
    def loop(count, seconds):
        c = LineClient(port)
        try:
            def step(i):
                key, val = b"k%d" % (i % 100), b"v%d" % i
                c.send(resp(b"SET", key, val))
                if c.line() != b"+OK\r\n":
                    raise AssertionError("SET answered wrongly")
                c.send(resp(b"GET", key))
                if c.line() != b"$%d\r\n" % len(val) or c.exact(len(val) + 2) != val + b"\r\n":
                    raise AssertionError("GET %s did not return %s" % (key, val))
            return bounded(count, seconds, step)
        finally:
            c.close()
    return loop


def memcached_loop(port):
    def loop(count, seconds):
        c = LineClient(port)
        try:
            def step(i):
                key, val = b"k%d" % (i % 100), b"v%d" % i
                c.send(b"set %s 0 0 %d\r\n%s\r\n" % (key, len(val), val))
                if c.line() != b"STORED\r\n":
                    raise AssertionError("set not STORED")
                c.send(b"get %s\r\n" % key)
                if (c.line() != b"VALUE %s 0 %d\r\n" % (key, len(val)) or c.exact(len(val) + 2) != val + b"\r\n"
                        or c.line() != b"END\r\n"):
                    raise AssertionError("get %s did not return %s" % (key, val))
            return bounded(count, seconds, step)
        finally:
            c.close()
    return loop


def echo_loop(port):
    def loop(count, seconds):
        c = LineClient(port)
        try:
            def step(i):
                c.send(b"line %d\n" % i)
                if c.line() != b"line %d\n" % i:
                    raise AssertionError("echo did not return line %d" % i)
            return bounded(count, seconds, step)
        finally:
            c.close()
    return loop


def http_loop(port, expect):
    def loop(count, seconds):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            def step(i):
                c.request("GET", "/r%d" % i)
                r = c.getresponse()
                body = r.read()
                if r.status != 200 or not expect(body, i):
                    raise AssertionError("GET /r%d: %d %r" % (i, r.status, body[:60]))
            return bounded(count, seconds, step)
        finally:
            c.close()
    return loop


# --- the programs ------------------------------------------------------------
def need(*programs):
    missing = [p for p in programs if shutil.which(p) is None and not os.path.exists(p)]
    if missing:
        print("realworld: not installed: %s (scripts/deps.sh test installs them)" % " ".join(missing), flush=True)
    return not missing


def run_redis(s):
    if not need("redis-server"):
        return SKIP

    def start(ps, name, extra=()):
        d = s.tmpdir(name)
        port = free_port()
        p, log = s.start(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                          "--daemonize", "no", "--dir", d] + list(extra), ps, d, dump_dir=d)
        pid = s.program_pid(p, ps, "redis-server")
        wait_port(p, port, "redis")
        return p, pid, port, d, log

    p, pid, port, d, log = start(False, "baseline")
    base = s.throughput("baseline", redis_loop(port), "SET/GET without panicstop")
    s.cleanup()

    p, pid, port, d, log = start(True, "kill-SEGV")
    under = s.throughput("kill-SEGV", redis_loop(port), "SET/GET under panicstop")
    s.ratio("kill-SEGV", base, under)
    s.crash("kill-SEGV", pid, signal.SIGSEGV, None, s.exit_signal(p, True), d, [log])
    s.cleanup()

    p, pid, port, d, log = start(True, "kill-ABRT")
    s.crash("kill-ABRT", pid, signal.SIGABRT, None, s.exit_signal(p, True), d, [log])
    s.cleanup()

    # A real fault inside redis, with redis's own crash handler installed.
    # DEBUG is off by default in redis 7 and this one command needs it.
    # The handler's memory test fills and restores every anonymous mapping,
    # the shim's .bss and the main thread's control block (with glibc's rseq
    # area) among them; with the area registered meanwhile, the kernel killed
    # redis before its report's end and panicstop's dump in about 1 run of
    # 100 under load (src/thread/rseq.hpp).
    p, pid, port, d, log = start(True, "debug-segfault", ["--enable-debug-command", "yes"])
    c = LineClient(port)

    def fault():
        c.send(resp(b"DEBUG", b"SEGFAULT"))
    try:
        s.crash("debug-segfault", pid, signal.SIGSEGV, fault, s.exit_signal(p, True), d, [log])
    finally:
        c.close()
    return 0


def run_mariadb(s):
    if not need("mariadbd", "mariadb-install-db", "mariadb"):
        return SKIP
    data = s.tmpdir("datadir")
    init = subprocess.run(["mariadb-install-db", "--no-defaults", "--datadir=" + data, "--user=root",
                           "--auth-root-authentication-method=normal", "--skip-test-db"],
                          capture_output=True, text=True, timeout=120)
    if not s.check("install-db", init.returncode == 0, "mariadb-install-db",
                   "exit %d %s" % (init.returncode, init.stderr.strip()[-300:])):
        return 0

    def start(ps, name, wrapper=()):
        d = s.tmpdir(name)
        port = free_port()
        sock = os.path.join(d, "mysqld.sock")
        p, log = s.start(["mariadbd", "--no-defaults", "--datadir=" + data, "--user=root", "--port=%d" % port,
                          "--bind-address=127.0.0.1", "--socket=" + sock, "--pid-file=" + os.path.join(d, "pid"),
                          "--skip-grant-tables", "--log-error=" + os.path.join(d, "error.log")], ps, d, dump_dir=d,
                         wrapper=wrapper)
        pid = s.program_pid(p, ps, "mariadbd")

        def greets():
            if p.poll() is not None:
                raise RuntimeError("mariadbd exited with %s: %s" % (p.returncode, read(os.path.join(d, "error.log"))[-500:]))
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                    return len(c.recv(5)) == 5  # the server's handshake packet
            except OSError:
                return False
        wait_for(greets, READY_SECONDS, "mariadbd on port %d" % port, interval=0.1)
        return p, pid, port, d, log

    def loop_for(port):
        def loop(count, seconds):
            # One client process for the whole loop, so the rate is queries,
            # not process starts; the time bound is the process's timeout.
            stmts = "".join("SELECT %d;\n" % i for i in range(count))
            try:
                r = subprocess.run(["mariadb", "--no-defaults", "--protocol=tcp", "-h", "127.0.0.1", "-P", str(port),
                                    "-u", "root", "--batch", "--skip-column-names"], input=stmts,
                                   capture_output=True, text=True, timeout=seconds * 5)
            except subprocess.TimeoutExpired:
                raise AssertionError("client ran past %.0fs" % (seconds * 5))
            got = r.stdout.split()
            if r.returncode != 0 or got != [str(i) for i in range(count)]:
                raise AssertionError("exit %d, %d rows, %s" % (r.returncode, len(got), r.stderr.strip()[:200]))
            return count
        return loop

    # Both servers use the one datadir, one after the other: initialising a
    # second would double the slowest step of this test.
    p, pid, port, d, log = start(False, "baseline")
    base = s.throughput("baseline", loop_for(port), "SELECT without panicstop")
    s.cleanup()
    p, pid, port, d, log = start(True, "kill-SEGV")
    under = s.throughput("kill-SEGV", loop_for(port), "SELECT under panicstop")
    s.ratio("kill-SEGV", base, under)
    s.crash("kill-SEGV", pid, signal.SIGSEGV, None, s.exit_signal(p, True), d, [log, os.path.join(d, "error.log")])
    s.cleanup()
    # Room for 2 queued signals (RLIMIT_SIGPENDING counts every queued
    # real-time signal of the user's processes): most stop signals to
    # mariadbd's threads find the queue full, and are sent again as each
    # stopped thread frees its entry. Every thread must still be stopped.
    if need("prlimit"):
        p, pid, port, d, log = start(True, "sigpending-2-kill-SEGV", wrapper=["prlimit", "--sigpending=2", "--"])
        s.crash("sigpending-2-kill-SEGV", pid, signal.SIGSEGV, None, s.exit_signal(p, True), d,
                [log, os.path.join(d, "error.log")])
    return 0


NODE_SCRIPT = r"""
const { Worker, isMainThread, parentPort } = require('worker_threads');
const http = require('http');
const port = Number(process.argv[2]);
if (isMainThread) {
  let up = 0;
  for (let i = 0; i < 2; i++) {
    new Worker(__filename, { argv: [port] }).on('message', () => { if (++up === 2) listen(); });
  }
  function listen() {
    http.createServer((req, res) => {
      if (req.url === '/crash') { res.end('bye'); setImmediate(() => process.kill(process.pid, 'SIGSEGV')); return; }
      res.end('ok ' + req.url);
    }).listen(port, '127.0.0.1');
  }
} else {
  parentPort.postMessage('up');
  setInterval(() => {}, 1000);
}
"""


def run_node(s):
    if not need("node"):
        return SKIP
    script = os.path.join(s.tmpdir("script"), "server.js")
    with open(script, "w") as f:
        f.write(NODE_SCRIPT)

    def start(ps, name):
        d = s.tmpdir(name)
        port = free_port()
        p, log = s.start(["node", script, str(port)], ps, d, dump_dir=d)
        pid = s.program_pid(p, ps, "node")
        wait_port(p, port, "node")
        return p, pid, port, d, log

    loop = lambda port: http_loop(port, lambda body, i: body == b"ok /r%d" % i)
    p, pid, port, d, log = start(False, "baseline")
    base = s.throughput("baseline", loop(port), "HTTP GET without panicstop")
    s.cleanup()
    p, pid, port, d, log = start(True, "kill-SEGV")
    under = s.throughput("kill-SEGV", loop(port), "HTTP GET under panicstop")
    s.ratio("kill-SEGV", base, under)
    s.crash("kill-SEGV", pid, signal.SIGSEGV, None, s.exit_signal(p, True), d, [log])
    s.cleanup()

    p, pid, port, d, log = start(True, "self-SEGV")

    def ask_crash():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            c.request("GET", "/crash")
            c.getresponse().read()
        except OSError:
            pass  # the process may die before the answer is read
        finally:
            c.close()
    s.crash("self-SEGV", pid, signal.SIGSEGV, ask_crash, s.exit_signal(p, True), d, [log])
    return 0


def run_java(s):
    if not need("java"):
        return SKIP
    src = os.path.join(HERE, "Crash.java")

    def start(ps, name):
        d = s.tmpdir(name)
        port = free_port()
        # hs_err files go to the working directory, which is d.
        p, log = s.start(["java", src, "serve", str(port)], ps, d, dump_dir=d)
        pid = s.program_pid(p, ps, "java")
        wait_port(p, port, "java")
        # The channel loads libnio on its first accept; a connection makes sure
        # that has happened before the crash.
        return p, pid, port, d, log

    p, pid, port, d, log = start(False, "baseline")
    base = s.throughput("baseline", echo_loop(port), "echo without panicstop")
    s.cleanup()
    p, pid, port, d, log = start(True, "kill-SEGV")
    under = s.throughput("kill-SEGV", echo_loop(port), "echo under panicstop")
    s.ratio("kill-SEGV", base, under)
    s.crash("kill-SEGV", pid, signal.SIGSEGV, None, s.exit_signal(p, True), d, [log])
    s.cleanup()
    p, pid, port, d, log = start(True, "kill-ABRT")
    echo_loop(port)(10, 5.0)
    s.crash("kill-ABRT", pid, signal.SIGABRT, None, s.exit_signal(p, True), d, [log])
    s.cleanup()

    # Interruptible I/O: closing a channel wakes the thread blocked in accept()
    # with the JDK's signal, which must keep working under panicstop.
    for ps, name in ((False, "close-wakes-accept-baseline"), (True, "close-wakes-accept")):
        d = s.tmpdir(name)
        p, log = s.start(["java", src, "interrupt", str(free_port())], ps, d, dump_dir=d,
                         stdout=subprocess.PIPE)
        try:
            out, _ = p.communicate(timeout=60)
            out = out.decode(errors="replace").strip()
            rc = p.returncode
        except subprocess.TimeoutExpired:
            out, rc = "hung for 60s", None
        s.check(name, rc == 0, "accept() unblocked by close()%s" % (" under panicstop" if ps else ""),
                "exit %s: %s %s" % (rc, out[-200:], read(log).strip()[-200:]))
        s.cleanup()
    return 0


NGINX_CONF = """
daemon on;
master_process on;
worker_processes 2;
# Debian's own: the master stays root, the workers become www-data. They
# made their control sockets as root, before the switch; `panicstop kdb`
# and `panicstop dump` run as root reach them there, and a crash dump of a
# worker goes to a directory www-data may write (mode 1777, as /tmp).
user www-data;
pid {d}/nginx.pid;
error_log {d}/error.log notice;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{port};
    location / {{ return 200 "ok $uri"; }}
  }}
}}
"""


def run_nginx(s):
    if not need("/usr/sbin/nginx"):
        return SKIP

    def start(ps, name):
        d = s.tmpdir(name)
        # The workers (www-data) pass through the suite's own 0700 directory.
        os.chmod(s.root, 0o711)
        dumps = os.path.join(d, "dumps")
        os.makedirs(dumps, exist_ok=True)
        os.chmod(dumps, 0o1777)
        port = free_port()
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(d=d, port=port))
        p, log = s.start(["/usr/sbin/nginx", "-p", d, "-c", conf, "-e", os.path.join(d, "error.log")], ps, d,
                         dump_dir=dumps)
        pidfile = os.path.join(d, "nginx.pid")

        def master():
            text = read(pidfile).strip()
            return int(text) if text.isdigit() and alive(int(text)) else None
        m = wait_for(master, READY_SECONDS, "nginx pid file")
        s.pids.add(m)
        workers = wait_for(lambda: len(children(m)) == 2 and children(m), READY_SECONDS, "nginx's 2 workers")
        s.pids.update(workers)
        wait_for(lambda: port_open(port), READY_SECONDS, "nginx on port %d" % port)
        # The daemonizing parent exits once the master is on its own.
        rc = p.wait(timeout=READY_SECONDS)
        return m, sorted(workers), port, d, [log, os.path.join(d, "error.log")], rc, dumps

    loop = lambda port: http_loop(port, lambda body, i: body == b"ok /r%d" % i)
    m, workers, port, d, logs, rc, dumps = start(False, "baseline")
    base = s.throughput("baseline", loop(port), "HTTP GET without panicstop")
    s.cleanup()

    m, workers, port, d, logs, rc, dumps = start(True, "daemon")
    # A worker switches right after its fork: wait for it, within a bound.
    try:
        wait_for(lambda: all(owner(w) == "www-data" for w in workers), READY_SECONDS, "the workers to be www-data")
    except Timeout:
        pass
    s.check("daemon", all(owner(w) == "www-data" for w in workers), "workers run as www-data",
            " ".join("%d:%s" % (w, owner(w)) for w in workers))
    s.check("daemon", rc == 0, "panicstop run returns when nginx daemonizes", "exit %s" % rc)
    under = s.throughput("daemon", loop(port), "HTTP GET under panicstop")
    s.ratio("daemon", base, under)

    # Each process of the daemon, each a fork without exec, must be reachable.
    for role, pid in [("master", m)] + [("worker%d" % (i + 1), w) for i, w in enumerate(workers)]:
        case = "kdb-%s" % role
        try:
            r = subprocess.run([s.tool, "kdb", str(pid), "-c", "threads"], capture_output=True, text=True,
                               timeout=30)
            out, rc = r.stdout + r.stderr, r.returncode
        except subprocess.TimeoutExpired:
            out, rc = "hung for 30s", None
        s.check(case, rc == 0 and all(str(t) in out for t in tids(pid)),
                "kdb %d -c threads (%s)" % (pid, role), "exit %s: %s" % (rc, " ".join(out.split())[:200]))
        case = "dump-%s" % role
        dd = s.tmpdir(case)
        expected = tids(pid)
        try:
            r = subprocess.run([s.tool, "dump", str(pid), "--dir", dd], capture_output=True, text=True, timeout=60)
            out, rc = r.stdout + r.stderr, r.returncode
        except subprocess.TimeoutExpired:
            out, rc = "hung for 60s", None
        s.check(case, rc == 0, "dump %d --dir (%s)" % (pid, role), "exit %s: %s" % (rc, " ".join(out.split())[:200]))
        s.check_dump(case, pid, "/usr/sbin/nginx", dd, expected, set(), [], live=True)
        s.check(case, alive(pid), "%s goes on after the live dump" % role, "pid %d" % pid)

    # A crash in one worker: the master notices and logs the signal.
    victim = workers[0]
    errlog = os.path.join(d, "error.log")

    def died():
        m_ = re.search(r"worker process %d exited on signal (\d+)" % victim, read(errlog))
        return int(m_.group(1)) if m_ else None
    s.crash("worker-kill-SEGV", victim, signal.SIGSEGV, None, died, dumps, logs)
    return 0


PYTHON_SCRIPT = r"""
import subprocess, sys, threading
# A child first: CPython starts it with vfork() and resets every handler to
# SIG_DFL in that child before the exec (faulthandler's must stay the parent's).
subprocess.run(["true"], check=True)
stop = threading.Event()
for i in range(4):
    threading.Thread(target=stop.wait, name="waiter-%d" % i, daemon=True).start()
if sys.argv[1:] == ["emfile"]:
    # At the descriptor limit, as a server that leaks them: the crash comes
    # where nothing more can be opened.
    import os, resource
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    try:
        while True:
            os.open("/dev/null", os.O_RDONLY)
    except OSError:
        pass
print("ready", flush=True)
stop.wait()
"""


# A threaded program that forks without exec, as daemons and prefork servers
# do: the child starts threads of its own and is crashed; its parent writes
# how the child ended to argv[1].
PYTHON_FORK_SCRIPT = r"""
import os, sys, threading
stop = threading.Event()
for i in range(4):
    threading.Thread(target=stop.wait, name="parent-%d" % i, daemon=True).start()
r, w = os.pipe()
child = os.fork()
if child == 0:
    os.close(r)
    for i in range(3):
        threading.Thread(target=stop.wait, name="child-%d" % i, daemon=True).start()
    os.write(w, b"ready")
    stop.wait()
    os._exit(0)
os.close(w)
os.read(r, 5)
print("child %d" % child, flush=True)
_, status = os.waitpid(child, 0)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write("%d\n" % (os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
stop.wait()
"""


def run_python_fork(s, py):
    """The child of a threaded python crashes: its dump shows its own threads
    only, and the parent goes on without a dump."""
    name = "fork-child-kill-SEGV"
    d = s.tmpdir(name)
    script = os.path.join(d, "fork.py")
    with open(script, "w") as f:
        f.write(PYTHON_FORK_SCRIPT)
    status = os.path.join(d, "child-status")
    p, log = s.start([py, script, status], True, d, dump_dir=d, stdout=subprocess.PIPE)
    parent = s.program_pid(p, True, "python3")
    line = p.stdout.readline()  # "child PID" once the child's threads run; EOF if it died
    m = re.match(rb"child (\d+)\n$", line)
    if not s.check(name, m is not None, "child ready", repr(line)):
        return
    child = int(m.group(1))
    wait_for(lambda: len(tids(child)) >= 4, READY_SECONDS, "the child's 4 threads")

    def died():
        text = read(status)
        return int(text) if text.strip() else None
    s.crash(name, child, signal.SIGSEGV, None, died, d, [log])
    s.check(name, alive(parent), "the parent goes on", "pid %d" % parent)
    txt, core = s.dumps_for(d, parent)
    s.check(name, txt is None and core is None, "no dump of the parent",
            ", ".join(os.path.basename(x) for x in (txt, core) if x) or "none")
    s.cleanup()


def live_dump_at_the_limit(s, pid):
    """A live dump of a process with every descriptor taken, the state an
    operator most wants to look into: served from the live dump's own
    reserve, which is back in place afterwards."""
    case = "emfile-live-dump"
    dd = s.tmpdir(case)
    fds = "/proc/%d/fd" % pid
    before = len(os.listdir(fds))
    try:
        r = subprocess.run([s.tool, "dump", str(pid), "--dir", dd], capture_output=True, text=True, timeout=60)
        out, rc = r.stdout + r.stderr, r.returncode
    except subprocess.TimeoutExpired:
        out, rc = "hung for 60s", None
    s.check(case, rc == 0, "dump %d --dir at the descriptor limit" % pid,
            "exit %s: %s" % (rc, " ".join(out.split())[:200]))
    s.check_dump(case, pid, "/usr/bin/python3", dd, tids(pid), set(), [], live=True)
    after = len(os.listdir(fds))
    s.check(case, after == before, "descriptors open after it as before", "%d before, %d after" % (before, after))


def run_python(s):
    py = "/usr/bin/python3"
    if not need(py):
        return SKIP
    run_python_fork(s, py)
    script = os.path.join(s.tmpdir("script"), "threads.py")
    with open(script, "w") as f:
        f.write(PYTHON_SCRIPT)
    for flags, args, name in (([], [], "kill-SEGV"), (["-X", "faulthandler"], [], "faulthandler-kill-SEGV"),
                              ([], ["emfile"], "emfile-kill-SEGV")):
        d = s.tmpdir(name)
        p, log = s.start([py] + flags + [script] + args, True, d, dump_dir=d, stdout=subprocess.PIPE)
        pid = s.program_pid(p, True, "python3")
        line = p.stdout.readline()  # "ready" once the threads run; EOF if it died
        if not s.check(name, line == b"ready\n", "script ready", repr(line)):
            continue
        wait_for(lambda: len(tids(pid)) >= 5, READY_SECONDS, "python's 5 threads")
        if args == ["emfile"]:
            live_dump_at_the_limit(s, pid)
        s.crash(name, pid, signal.SIGSEGV, None, s.exit_signal(p, True), d, [log])
        if flags:
            said = "Fatal Python error: Segmentation fault" in read(log)
            s.check(name, said, "faulthandler's own report first",
                    "in the program's stderr" if said else "not in the program's stderr")
        s.cleanup()
    return 0


def run_memcached(s):
    if not need("memcached"):
        return SKIP

    def start(ps, name):
        d = s.tmpdir(name)
        port = free_port()
        p, log = s.start(["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-u", "root"], ps, d,
                         dump_dir=d)
        pid = s.program_pid(p, ps, "memcached")
        wait_port(p, port, "memcached")
        return p, pid, port, d, log

    p, pid, port, d, log = start(False, "baseline")
    base = s.throughput("baseline", memcached_loop(port), "set/get without panicstop")
    s.cleanup()
    p, pid, port, d, log = start(True, "kill-SEGV")
    under = s.throughput("kill-SEGV", memcached_loop(port), "set/get under panicstop")
    s.ratio("kill-SEGV", base, under)
    s.crash("kill-SEGV", pid, signal.SIGSEGV, None, s.exit_signal(p, True), d, [log])
    return 0


PROGRAMS = {
    "redis": run_redis,
    "mariadb": run_mariadb,
    "node": run_node,
    "java": run_java,
    "nginx": run_nginx,
    "memcached": run_memcached,
    "python": run_python,
    "sbcl": lambda s: runtimes.run_sbcl(s, sys.modules[__name__]),
    "gnat": lambda s: runtimes.run_gnat(s, sys.modules[__name__]),
    "ruby": lambda s: runtimes.run_ruby(s, sys.modules[__name__]),
    "go": lambda s: runtimes.run_go(s, sys.modules[__name__]),
    "mono": lambda s: runtimes.run_mono(s, sys.modules[__name__]),
    "rust": lambda s: runtimes.run_rust(s, sys.modules[__name__]),
    "postgres": lambda s: postgres.run_postgres(s, sys.modules[__name__]),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("programs", nargs="+", metavar="PROGRAM", help="%s, or all" % ", ".join(PROGRAMS))
    ap.add_argument("--build", help="build tree: the tool and the shim are taken from it")
    ap.add_argument("--tool", help="the panicstop command (default BUILD/tools/panicstop)")
    ap.add_argument("--preload", help="libpanicstop_preload.so (default BUILD/preload/libpanicstop_preload.so)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (dumps, logs)")
    args = ap.parse_args()
    names = list(PROGRAMS) if args.programs == ["all"] else args.programs
    for n in names:
        if n not in PROGRAMS:
            ap.error("unknown program %r (one of: %s, all)" % (n, ", ".join(PROGRAMS)))
    build = args.build or os.path.join(HERE, "..", "..", "build")
    args.tool = os.path.abspath(args.tool or os.path.join(build, "tools", "panicstop"))
    args.preload = os.path.abspath(args.preload or os.path.join(build, "preload", "libpanicstop_preload.so"))
    for path in (args.tool, args.preload):
        if not os.path.exists(path):
            ap.error("%s does not exist (build it, or pass --build/--tool/--preload)" % path)
    if shutil.which("gdb") is None:
        ap.error("gdb is needed to read the cores")

    # A ctest timeout sends SIGTERM first: the servers (nginx's master has
    # left our session) still get killed by the finally below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("realworld: terminated"))
    s = Suite(args)
    skipped = []
    try:
        for n in names:
            s.program = n
            try:
                if PROGRAMS[n](s) == SKIP:
                    skipped.append(n)
            except (Timeout, RuntimeError, OSError, subprocess.SubprocessError, AssertionError) as e:
                s.check("setup", False, "ran to the end", "%s: %s" % (type(e).__name__, e))
            finally:
                s.cleanup()
    finally:
        s.cleanup()
        if args.keep:
            print("realworld: kept %s" % s.root, flush=True)
        else:
            shutil.rmtree(s.root, ignore_errors=True)
    if s.failures:
        print("realworld: %d check(s) failed:" % len(s.failures))
        for f in s.failures:
            print("  " + f)
        return 1
    if skipped and len(skipped) == len(names):
        return SKIP
    print("realworld: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
