"""Runtimes that leave their own signal handlers by unwinding, under
`panicstop run` (part of tests/realworld/realworld.py, which passes itself
as `rw` for its helpers).

SBCL turns a trapped type error (SIGTRAP) or a memory fault (SIGSEGV) into a
Lisp condition from inside its handler, and a `handler-case` leaves the
handler with a non-local exit of its own; GNAT raises Storage_Error and
Constraint_Error out of its SIGSEGV and SIGFPE handlers through the DWARF
unwinder. Each program must run as it does without panicstop (every fault
caught, a clean exit), and a crash must still give the report and core with
every thread stopped.
"""
import os
import signal
import subprocess

SBCL_SCRIPT = r"""
(defvar *sink* 0)
(defun first-of (x) (declare (optimize (safety 3))) (car x))
(let ((caught 0))
  (dotimes (i 3000)
    (handler-case (setf *sink* (first-of (if (> i -1) 5 nil)))
      (type-error () (incf caught))))
  (format t "type errors caught ~a~%" caught))
(format t "memory fault ~a~%"
        (handler-case (progn (setf *sink* (sb-sys:sap-ref-32 (sb-sys:int-sap 8) 0)) "missed")
          (error () "caught")))
(when (sb-ext:posix-getenv "REALWORLD_WAIT")
  (dotimes (i 3)
    (sb-thread:make-thread (lambda () (loop (sleep 1))) :name (format nil "sleeper-~a" i)))
  (format t "ready~%")
  (finish-output)
  (loop (sleep 1)))
(finish-output)
(sb-ext:exit)
"""

GNAT_PROGRAM = r"""
with Ada.Text_IO; use Ada.Text_IO;
with Ada.Directories;
with Ada.Environment_Variables;
with System.Storage_Elements; use System.Storage_Elements;
procedure Faults is
   pragma Suppress (All_Checks);
   Caught : Natural := 0;
   procedure Touch (N : Integer) is
      X : Integer;
      for X'Address use To_Address (Integer_Address (8 + 4 * (N mod 2)));
      pragma Import (Ada, X);
   begin
      X := N;
   end Touch;
   function Div (A, B : Integer) return Integer is
   begin
      return A / B;
   end Div;
   Zero : Integer := 0;
   pragma Volatile (Zero);
   task type Sleeper;
   task body Sleeper is
   begin
      loop
         delay 1.0;
      end loop;
   end Sleeper;
   type Sleeper_Access is access Sleeper;
   S : Sleeper_Access;
   procedure C_Abort;
   pragma Import (C, C_Abort, "abort");
begin
   for I in 1 .. 1000 loop
      begin
         Touch (I);
      exception
         when Storage_Error => Caught := Caught + 1;
      end;
   end loop;
   Put_Line ("memory faults caught" & Natural'Image (Caught));
   Caught := 0;
   for I in 1 .. 1000 loop
      begin
         Zero := Div (I, Zero);
      exception
         when Constraint_Error => Caught := Caught + 1;
      end;
   end loop;
   Put_Line ("divisions caught" & Natural'Image (Caught));
   if Ada.Environment_Variables.Exists ("REALWORLD_WAIT") then
      for I in 1 .. 3 loop
         S := new Sleeper;
      end loop;
      Put_Line ("ready");
      Flush;
      --  GNAT's tasking runtime takes SIGABRT, SIGSEGV and SIGQUIT sent
      --  from outside for itself (task abortion, an exception in some
      --  task): the process goes on. What ends it is its own abort().
      loop
         delay 0.05;
         exit when Ada.Directories.Exists
           (Ada.Environment_Variables.Value ("REALWORLD_WAIT"));
      end loop;
      C_Abort;
   end if;
end Faults;
"""


def faults_then_crash(s, rw, name, argv, expect_lines, threads, abort_when_file=False):
    """Runs argv twice under panicstop: to the end (every expected line, a
    clean exit, no panic), then waiting with `threads` threads until it
    dies of SIGABRT, which must give the whole dump: sent from outside, or,
    with abort_when_file, the program's own abort() once the file that
    REALWORLD_WAIT names exists."""
    d = s.tmpdir(name + "-exit")
    p, log = s.start(argv, True, d, dump_dir=d, stdout=subprocess.PIPE)
    try:
        out, _ = p.communicate(timeout=rw.READY_SECONDS)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    text = out.decode(errors="replace")
    missing = [l for l in expect_lines if l not in text]
    s.check(name + "-exit", not missing, "every fault caught where it happened",
            "missing %s; stdout: %s" % (missing, " | ".join(text.splitlines()[-4:])) if missing else
            "; ".join(expect_lines))
    stderr = rw.read(log)
    panicked = [l for l in stderr.splitlines() if l.startswith("panic:")]
    s.check(name + "-exit", p.returncode == 0 and not panicked, "exits as without panicstop",
            "exit %s%s" % (p.returncode, "; " + panicked[0][:160] if panicked else ""))

    case = name + ("-abort" if abort_when_file else "-kill-ABRT")
    d = s.tmpdir(case)
    go = os.path.join(d, "go")
    p, log = s.start(argv, True, d, dump_dir=d, env={"REALWORLD_WAIT": go}, stdout=subprocess.PIPE)
    pid = s.program_pid(p, True, os.path.basename(argv[0]))
    ready = False
    for _ in range(len(expect_lines) + 1):
        line = p.stdout.readline()
        if line in (b"ready\n", b""):
            ready = line == b"ready\n"
            break
    if not s.check(case, ready, "program ready", "its faults caught, %d threads started" % threads):
        return
    rw.wait_for(lambda: len(rw.tids(pid)) >= threads + 1, rw.READY_SECONDS, "%s's threads" % name)
    trigger = (lambda: open(go, "w").close()) if abort_when_file else None
    s.crash(case, pid, signal.SIGABRT, trigger, s.exit_signal(p, True), d, [log])


def run_sbcl(s, rw):
    if not rw.need("sbcl"):
        return rw.SKIP
    script = os.path.join(s.tmpdir("script"), "faults.lisp")
    with open(script, "w") as f:
        f.write(SBCL_SCRIPT)
    # SBCL's own finalizer thread, and three sleepers.
    faults_then_crash(s, rw, "sbcl", ["sbcl", "--noinform", "--non-interactive", "--no-userinit", "--load", script],
                      ["type errors caught 3000", "memory fault caught"], 4)
    return 0


def run_gnat(s, rw):
    if not rw.need("gnatmake"):
        return rw.SKIP
    d = s.tmpdir("build")
    with open(os.path.join(d, "faults.adb"), "w") as f:
        f.write(GNAT_PROGRAM)
    r = subprocess.run(["gnatmake", "-q", "-O1", "faults.adb"], cwd=d, capture_output=True, text=True,
                       timeout=rw.READY_SECONDS)
    if not s.check("build", r.returncode == 0, "gnatmake faults.adb", (r.stdout + r.stderr)[-300:]):
        return 0
    faults_then_crash(s, rw, "gnat", [os.path.join(d, "faults")],
                      ["memory faults caught 1000", "divisions caught 1000"], 3, abort_when_file=True)
    return 0
