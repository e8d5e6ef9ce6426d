"""PostgreSQL under `panicstop run` (part of tests/realworld/realworld.py,
which passes itself as `rw` for its helpers).

A server of processes, not threads: the postmaster forks a backend for each
connection and its helpers (checkpointer, WAL writer, autovacuum) without
exec, all as the unprivileged user postgres. When a backend dies of a signal,
the postmaster ends every other backend, recovers the database from its WAL
and accepts connections again; that only happens if the backend really dies
of the signal, so a crash handler that exits instead breaks the recovery.
Checked: initdb (which runs the server in bootstrap mode) works, the server
answers a bounded pgbench run, root's `panicstop kdb` and `panicstop dump`
reach a backend in a query, a backend's crash gives its report and core, and
the server recovers and answers again.
"""
import glob
import os
import pwd
import re
import shutil
import signal
import subprocess


def server_binaries():
    """The newest installed major version's bin directory, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return os.path.dirname(found[-1]) if found else None


def run_postgres(s, rw):
    bindir = server_binaries()
    if bindir is None or not rw.need(*(os.path.join(bindir, b) for b in ("initdb", "pgbench", "psql"))):
        if bindir is None:
            print("realworld: not installed: postgresql (scripts/deps.sh test installs it)", flush=True)
        return rw.SKIP
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        print("realworld: no user postgres (Debian's postgresql package makes it)", flush=True)
        return rw.SKIP
    # The server refuses to run as root: everything runs as postgres, which
    # passes through the suite's own 0700 directory.
    os.chmod(s.root, 0o711)
    d = s.tmpdir("server")
    os.chmod(os.path.dirname(d), 0o711)
    os.chown(d, user.pw_uid, user.pw_gid)
    # `panicstop run` runs as postgres too, and the build tree may be in a
    # directory only root may enter (a clone under `mktemp -d`): it and the
    # shim run from copies here.
    tools = s.tmpdir("bin")
    os.chmod(tools, 0o755)
    for path in (s.tool, s.preload):
        shutil.copy2(path, tools)
    saved = s.tool, s.preload
    s.tool, s.preload = (os.path.join(tools, os.path.basename(p)) for p in saved)
    try:
        return serve_and_crash(s, rw, bindir, d, user)
    finally:
        s.tool, s.preload = saved


def serve_and_crash(s, rw, bindir, d, user):
    """initdb, the server, its load, kdb and a live dump of a backend, and a
    backend's crash; d: the server's directory, user postgres's entry."""
    as_postgres = ("runuser", "-u", "postgres", "--")
    data = os.path.join(d, "data")
    dumps = os.path.join(d, "dumps")
    os.makedirs(dumps)
    os.chown(dumps, user.pw_uid, user.pw_gid)

    p, log = s.start([os.path.join(bindir, "initdb"), "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"],
                     True, d, dump_dir=dumps, wrapper=as_postgres)
    try:
        rc = p.wait(timeout=rw.READY_SECONDS)
    except subprocess.TimeoutExpired:
        rc = "hung for %ds" % rw.READY_SECONDS
    if not s.check("initdb", rc == 0, "initdb under panicstop (the server in bootstrap mode)",
                   "exit %s%s" % (rc, "" if rc == 0 else ": " + " | ".join(rw.read(log).splitlines()[-3:]))):
        return 0

    port = rw.free_port()
    p, log = s.start([os.path.join(bindir, "postgres"), "-D", data, "-k", d, "-p", str(port),
                      "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=20", "-c", "shared_buffers=16MB",
                      "-c", "fsync=off"], True, d, dump_dir=dumps, wrapper=as_postgres)
    rw.wait_port(p, port, "postgres")
    # The port listens before the startup process has replayed the WAL;
    # until the log says ready, every connection is refused as "starting up".
    ready = r"database system is ready to accept connections"
    rw.wait_for(lambda: re.search(ready, rw.read(log)), rw.READY_SECONDS, "postgres ready")
    # runuser, then `panicstop run`, then the postmaster: it names itself.
    first = rw.read(os.path.join(data, "postmaster.pid")).split("\n", 1)[0].strip()
    if not s.check("start", first.isdigit() and rw.alive(int(first)), "postmaster.pid names the postmaster", first):
        return 0
    postmaster = int(first)
    s.pids.add(postmaster)
    client = lambda *args: list(as_postgres) + list(args)
    conn = ["-h", "127.0.0.1", "-p", str(port), "-U", "postgres"]

    def psql(sql, timeout=30):
        r = subprocess.run(client(os.path.join(bindir, "psql"), *conn, "-d", "postgres", "-Atc", sql),
                           capture_output=True, text=True, timeout=timeout, cwd=d)
        return r.returncode, (r.stdout + r.stderr).strip()

    # A bounded load: pgbench ends after LOOP_SECONDS, whatever its count.
    pgbench = os.path.join(bindir, "pgbench")
    r = subprocess.run(client(pgbench, *conn, "-i", "-s", "1", "-q", "postgres"), capture_output=True, text=True,
                       timeout=rw.READY_SECONDS, cwd=d)
    if s.check("pgbench", r.returncode == 0, "pgbench -i (100,000 accounts)",
               " ".join((r.stdout + r.stderr).split())[-160:]):
        r = subprocess.run(client(pgbench, *conn, "-c", "4", "-j", "2", "-T", str(int(rw.LOOP_SECONDS)), "postgres"),
                           capture_output=True, text=True, timeout=rw.READY_SECONDS, cwd=d)
        out = r.stdout + r.stderr
        tps = re.search(r"^tps = ([\d.]+)", out, re.M)
        failed = re.search(r"number of failed transactions: (\d+)", out)
        s.check("pgbench", r.returncode == 0 and tps and failed and failed.group(1) == "0",
                "pgbench, 4 clients, %d s" % rw.LOOP_SECONDS,
                "%s transactions per second, %s failed" % (tps.group(1), failed.group(1)) if tps and failed
                else "exit %s: %s" % (r.returncode, " ".join(out.split())[-200:]))

    # A backend in a query: the per-connection process, forked without exec.
    sleeper = subprocess.Popen(client(os.path.join(bindir, "psql"), *conn, "-d", "postgres", "-Atc",
                                      "select pg_sleep(%d)" % int(rw.DEATH_SECONDS)),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=d)
    s.procs.append(sleeper)

    def backend():
        for c in rw.children(postmaster):
            if "SELECT" in rw.read("/proc/%d/cmdline" % c).replace("\0", " "):
                return c
        return None
    victim = rw.wait_for(backend, rw.READY_SECONDS, "the backend running pg_sleep")
    s.pids.add(victim)

    r = subprocess.run([s.tool, "kdb", str(victim), "-c", "threads"], capture_output=True, text=True, timeout=30)
    s.check("kdb-backend", r.returncode == 0 and str(victim) in r.stdout,
            "kdb %d -c threads (a backend, user postgres, from root)" % victim,
            "exit %s: %s" % (r.returncode, " ".join((r.stdout + r.stderr).split())[:200]))
    live = s.tmpdir("dump-backend")
    r = subprocess.run([s.tool, "dump", str(victim), "--dir", live], capture_output=True, text=True, timeout=60)
    s.check("dump-backend", r.returncode == 0, "dump %d --dir (a backend)" % victim,
            "exit %s: %s" % (r.returncode, " ".join((r.stdout + r.stderr).split())[:200]))
    s.check_dump("dump-backend", victim, rw.exe_of(victim), live, {victim}, set(), [], live=True)

    # The postmaster logs how each backend ended, then recovers.
    def died():
        m = re.search(r"server process \(PID %d\) was terminated by signal (\d+)" % victim, rw.read(log))
        return int(m.group(1)) if m else None
    s.crash("backend-kill-SEGV", victim, signal.SIGSEGV, None, died, dumps, [log])

    try:
        rw.wait_for(lambda: len(re.findall(ready, rw.read(log))) >= 2, rw.READY_SECONDS, "the recovery")
        rc, out = psql("select count(*) from pgbench_accounts")
    except rw.Timeout as e:
        rc, out = None, str(e)
    recovered = re.findall(r"^.*(?:all server processes terminated|redo done|ready to accept).*$", rw.read(log), re.M)
    s.check("recovery", rc == 0 and out == "100000", "the server recovers and answers",
            "select count(*) gave %s; %s" % (out[:100], " | ".join(l.split("LOG:")[-1].strip()
                                                                   for l in recovered[-3:])))
    s.check("recovery", rw.alive(postmaster), "the postmaster goes on", "pid %d" % postmaster)
    return 0
