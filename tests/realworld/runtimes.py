"""Runtimes that take faults for themselves and leave their signal handlers
without returning, under `panicstop run` (part of
tests/realworld/realworld.py, which passes itself as `rw` for its helpers).

SBCL turns a trapped type error (SIGTRAP) or a memory fault (SIGSEGV) into a
Lisp condition from inside its handler, and a `handler-case` leaves the
handler with a non-local exit of its own; GNAT raises Storage_Error and
Constraint_Error out of its SIGSEGV and SIGFPE handlers through the DWARF
unwinder; Ruby turns a stack overflow into SystemStackError from its SIGSEGV
handler, run on its own alternate stack, and jumps out of it; Go turns a nil
dereference into a panic that `recover` stops, while its scheduler preempts
goroutines with SIGURG; Mono resumes a faulting thread in its own code, for a
NullReferenceException or for its crash reporter. Each program must run as
it does without panicstop (every fault caught, a clean exit), and a crash
must still give the report and core with every thread stopped.
"""
import os
import re
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


# Marshal.dump of a deeply nested array overflows the machine stack in C
# (Ruby checks its own VM stack in software, so plain Ruby recursion never
# faults): Ruby's SIGSEGV handler, on the thread's sigaltstack, raises
# SystemStackError and jumps out. The crash is a fault in C reached through
# Fiddle, which Ruby's handler reports ([BUG]) and ends with abort().
RUBY_SCRIPT = r"""
require 'fiddle'
nested = []
100_000.times { nested = [nested] }
overflow = -> { c = 0; 50.times { begin; Marshal.dump(nested); rescue SystemStackError; c += 1; end }; c }
threads = 4.times.map { Thread.new(&overflow) }
puts "stack overflows caught #{overflow.() + threads.sum(&:value)}"
if (go = ENV["REALWORLD_WAIT"])
  wake = Queue.new
  faulter = Thread.new { wake.pop; Fiddle::Pointer.new(8)[0] }
  2.times { Thread.new { loop { sleep 1 } } }
  puts "ready"
  $stdout.flush
  sleep 0.05 until File.exist?(go)
  wake << :fault
  faulter.join
end
"""

# A cgo program: eight goroutines recover from 500 nil dereferences each
# while the scheduler preempts them with SIGURG; then, with GOTRACEBACK=crash,
# C code called from the main goroutine faults, Go prints every goroutine and
# ends with SIGABRT from the faulting thread.
GO_PROGRAM = r"""
package main

// static int deref(volatile int *p) { return *p; }
import "C"

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// A load that faults at its function's first instruction.
//
//go:noinline
func poke(p *int) int {
	return *p + 1
}

func nilDeref() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	var p *int
	return fmt.Errorf("%d", *p)
}

func main() {
	var caught atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				if nilDeref() != nil {
					caught.Add(1)
				}
				x := 0
				for j := 0; j < 20000; j++ {
					x += j
				}
				_ = x
			}
		}()
	}
	wg.Wait()
	fmt.Println("nil dereferences recovered", caught.Load())
	if os.Getenv("REALWORLD_NIL") != "" {
		fmt.Println(poke(nil))
	}
	if wait := os.Getenv("REALWORLD_WAIT"); wait != "" {
		for i := 0; i < 2; i++ {
			go func() {
				for {
					time.Sleep(time.Second)
				}
			}()
		}
		fmt.Println("ready")
		for {
			if _, err := os.Stat(wait); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		C.deref(nil)
	}
}
"""

# Mono: four threads turn 2,000 null dereferences each into
# NullReferenceException from its SIGSEGV handler while the others allocate,
# so that SGen stops the world with SIGPWR and SIGXCPU in between. The crash is
# a fault in native code (strlen(8) through P/Invoke): Mono's handler, on its
# own alternate stack, sets the saved pc to its crash reporter and returns; the
# reporter prints "Native Crash Reporting" on the thread's own stack and calls
# abort(). The panic is that abort, and it must name the fault it is about.
MONO_PROGRAM = r"""
using System;
using System.IO;
using System.Threading;
using System.Runtime.InteropServices;
class Faults {
  class Box { public int v; }
  [DllImport("libc")] static extern IntPtr strlen(IntPtr s);
  static int caught;
  static void Work() {
    Box b = null;
    for (int i = 0; i < 2000; i++) {
      try { b.v = i; } catch (NullReferenceException) { Interlocked.Increment(ref caught); }
      var garbage = new byte[512]; garbage[0] = 1;
    }
  }
  static void Main() {
    var workers = new Thread[4];
    for (int t = 0; t < workers.Length; t++) { workers[t] = new Thread(Work); workers[t].Start(); }
    foreach (var w in workers) w.Join();
    GC.Collect();
    Console.WriteLine("null references caught " + caught);
    string go = Environment.GetEnvironmentVariable("REALWORLD_WAIT");
    if (go == null) return;
    for (int t = 0; t < 2; t++) new Thread(() => { for (;;) Thread.Sleep(1000); }) { IsBackground = true }.Start();
    Console.WriteLine("ready");
    Console.Out.Flush();
    while (!File.Exists(go)) Thread.Sleep(50);
    strlen(new IntPtr(8));
  }
}
"""


# A Rust program: 200 panics caught where they happened (a worker's panic
# ends at its join, as in a server's request handler), then three sleeping
# workers and a thread that overflows its stack once told to. Rust's own SIGSEGV handler
# (on its alternate stack) tells the guard page, prints "thread 'deep' has
# overflowed its stack" and aborts inside the handler.
RUST_PROGRAM = r"""
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::{env, path::Path, thread, time::Duration};

static LIMIT: AtomicBool = AtomicBool::new(false);

#[inline(never)]
fn recurse(n: u64) -> u64 {
    let frame = [n; 64];
    if LIMIT.load(Ordering::Relaxed) {
        return frame[3];
    }
    let r = recurse(n + 1);
    r + unsafe { std::ptr::read_volatile(&frame[(n % 64) as usize]) }
}

fn main() {
    std::panic::set_hook(Box::new(|_| {}));
    let mut caught = 0;
    for i in 0..200usize {
        let worker = thread::spawn(move || {
            let v: Vec<usize> = Vec::new();
            v[i]
        });
        if worker.join().is_err() {
            caught += 1;
        }
    }
    println!("panics caught {}", caught);
    let wait = match env::var("REALWORLD_WAIT") {
        Ok(wait) => wait,
        Err(_) => return,
    };
    let stop = Arc::new(AtomicBool::new(false));
    for i in 0..3 {
        let stop = stop.clone();
        thread::Builder::new()
            .name(format!("worker-{}", i))
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    thread::sleep(Duration::from_millis(20));
                }
            })
            .unwrap();
    }
    let deep = thread::Builder::new()
        .name("deep".into())
        .spawn(move || {
            while !Path::new(&wait).exists() {
                thread::sleep(Duration::from_millis(20));
            }
            recurse(0)
        })
        .unwrap();
    println!("ready");
    println!("{:?}", deep.join().is_ok());
}
"""


def faults_then_crash(s, rw, name, argv, expect_lines, threads, ends_itself=None, env=None):
    """Runs argv twice under panicstop: to the end (every expected line, a
    clean exit, no panic), then waiting with `threads` threads until it
    dies, which must give the whole dump. It dies of SIGABRT sent from
    outside, or, with ends_itself = (case, signal), by its own doing once
    the file that REALWORLD_WAIT names exists, of that signal. Returns the
    crash's stderr log (None if it never got that far)."""
    d = s.tmpdir(name + "-exit")
    p, log = s.start(argv, True, d, dump_dir=d, env=env, stdout=subprocess.PIPE)
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

    case = name + "-" + (ends_itself[0] if ends_itself else "kill-ABRT")
    d = s.tmpdir(case)
    go = os.path.join(d, "go")
    p, log = s.start(argv, True, d, dump_dir=d, env=dict(env or {}, REALWORLD_WAIT=go), stdout=subprocess.PIPE)
    pid = s.program_pid(p, True, os.path.basename(argv[0]))
    ready = False
    seen = []
    for _ in range(len(expect_lines) + 1):
        line = p.stdout.readline()
        seen.append(line)
        if line in (b"ready\n", b""):
            ready = line == b"ready\n"
            break
    if not ready:
        try:
            rc = p.wait(timeout=rw.DEATH_SECONDS)
        except subprocess.TimeoutExpired:
            rc = "still running"
        why = "stdout %r, exit %s, stderr: %s" % (b"".join(seen)[-200:], rc,
                                                  " | ".join(rw.read(log).splitlines()[-6:])[-600:])
    if not s.check(case, ready, "program ready",
                   "its faults caught, %d threads started" % threads if ready else why):
        return None
    rw.wait_for(lambda: len(rw.tids(pid)) >= threads + 1, rw.READY_SECONDS, "%s's threads" % name)
    trigger = (lambda: open(go, "w").close()) if ends_itself else None
    s.crash(case, pid, ends_itself[1] if ends_itself else signal.SIGABRT, trigger, s.exit_signal(p, True), d, [log])
    return log


def write_script(s, name, text):
    """The path of a new file name holding text, for an interpreter."""
    path = os.path.join(s.tmpdir("script"), name)
    with open(path, "w") as f:
        f.write(text)
    return path


def run_sbcl(s, rw):
    if not rw.need("sbcl"):
        return rw.SKIP
    script = write_script(s, "faults.lisp", SBCL_SCRIPT)
    # SBCL's own finalizer thread, and three sleepers.
    faults_then_crash(s, rw, "sbcl", ["sbcl", "--noinform", "--non-interactive", "--no-userinit", "--load", script],
                      ["type errors caught 3000", "memory fault caught"], 4)
    return 0


def build(s, rw, sources, argv, env=None):
    """Writes sources ({file name: text}) into a build directory and runs
    argv there. Returns the directory, or None once the failed build is
    checked."""
    d = s.tmpdir("build")
    for name, text in sources.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    r = subprocess.run(argv, cwd=d, env=env, capture_output=True, text=True, timeout=rw.READY_SECONDS)
    return d if s.check("build", r.returncode == 0, " ".join(argv), (r.stdout + r.stderr)[-300:]) else None


def run_gnat(s, rw):
    if not rw.need("gnatmake"):
        return rw.SKIP
    d = build(s, rw, {"faults.adb": GNAT_PROGRAM}, ["gnatmake", "-q", "-O1", "faults.adb"])
    if d is None:
        return 0
    faults_then_crash(s, rw, "gnat", [os.path.join(d, "faults")],
                      ["memory faults caught 1000", "divisions caught 1000"], 3,
                      ends_itself=("abort", signal.SIGABRT))
    return 0


def run_ruby(s, rw):
    if not rw.need("ruby"):
        return rw.SKIP
    script = write_script(s, "faults.rb", RUBY_SCRIPT)
    # The main thread, the timer thread, the faulting thread and two sleepers.
    log = faults_then_crash(s, rw, "ruby", ["ruby", script], ["stack overflows caught 250"], 4,
                            ends_itself=("fault", signal.SIGSEGV))
    if log:
        # Ruby's own report walks through panicstop's frame (the trampoline
        # that called its handler) to the faulting C function in fiddle.so.
        report = rw.read(log)
        c_level = report.split("-- C level backtrace information", 1)[-1].split("\n", 1)[-1].split("\n\n", 1)[0]
        s.check("ruby-fault", "[BUG] Segmentation fault" in report and "/fiddle.so(" in c_level,
                "Ruby's own [BUG] report names the faulting library",
                "its C backtrace reaches fiddle.so" if "/fiddle.so(" in c_level else
                "C backtrace: " + " | ".join(c_level.strip().splitlines()[:8])[:400])
    return 0


def run_go(s, rw):
    if not rw.need("go"):
        return rw.SKIP
    cache = s.tmpdir("go")
    env = dict(os.environ, GOCACHE=os.path.join(cache, "cache"), GOPATH=os.path.join(cache, "gopath"),
               GOFLAGS="-mod=mod", GOTOOLCHAIN="local", CGO_ENABLED="1")
    d = build(s, rw, {"main.go": GO_PROGRAM, "go.mod": "module faults\n\ngo 1.19\n"},
              ["go", "build", "-o", "faults", "."], env)
    if d is None:
        return 0
    # Go's own threads: at least the scheduler's monitor and two more.
    faults_then_crash(s, rw, "go", [os.path.join(d, "faults")], ["nil dereferences recovered 4000"], 3,
                      ends_itself=("cgo-fault", signal.SIGABRT), env={"GOTRACEBACK": "crash"})

    # A nil dereference nobody recovers: Go's handler turns it into a call of
    # sigpanic from the faulting instruction, and the runtime's panic ends in
    # raise(SIGABRT). The dump must name the dereference, not only the raise.
    case = "go-nil"
    d2 = s.tmpdir(case)
    p, log = s.start([os.path.join(d, "faults")], True, d2, dump_dir=d2, stdout=subprocess.DEVNULL,
                     env={"GOTRACEBACK": "crash", "REALWORLD_NIL": "1", "PANICSTOP_DUMP": "text,core,minidump"})
    try:
        rc = p.wait(timeout=rw.DEATH_SECONDS)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = "hung for %ds" % rw.DEATH_SECONDS
    dumps = s.dumps_for(d2, kinds=("txt", "core", "dmp"))
    text = rw.read(dumps[0]) if dumps[0] else ""
    named = re.search(r"^  \d+ ms before: signal SIGSEGV \(SEGV_MAPERR[^)]*\), fault address 0x0, at 0x[0-9a-f]+ "
                      r"main\.poke\+0x0 \(faults\); the program's handler resumed the thread at "
                      r"0x[0-9a-f]+ runtime\.sigpanic.*$", text, re.M)
    s.check(case, text.startswith("panic: fatal signal SIGABRT") and named,
            "the runtime's abort names the nil dereference in main.poke",
            named.group(0)[:220] if named else "exit %s; report: %s" % (rc, " | ".join(text.splitlines()[:8])[:400]))
    # panicstop show of each dump: the faulting frame named as the instruction
    # it is (as a return address it read as the function before it), and Go
    # frames with Go's file:line, not that of a C unit of cgo's.
    for path in dumps:
        r = subprocess.run([s.tool, "show", path] if path else ["false"], capture_output=True, text=True, timeout=60)
        frame = re.search(r"^  #\d+ 0x[0-9a-f]+ main\.poke\+0x0 .*at \S+/main\.go:\d+$", r.stdout, re.M)
        wrong = re.search(r"^  #\d+ .*runtime\.\S+ .*at \S+\.c:\d+$", r.stdout, re.M)
        s.check(case, frame and not wrong and "ms before: signal SIGSEGV" in r.stdout,
                "panicstop show of the %s names the fault and its frame main.poke+0x0 at main.go" %
                (os.path.splitext(path)[1] if path else "missing dump"),
                frame.group(0).strip() if frame and not wrong else
                "exit %s: %s" % (r.returncode, (wrong.group(0) if wrong else (r.stdout + r.stderr)[-300:])))
    return 0


def run_rust(s, rw):
    # Debian's compiler by its path: a rustup toolchain earlier on PATH is not Debian's.
    rustc = "/usr/bin/rustc"
    if not rw.need(rustc):
        return rw.SKIP
    d = build(s, rw, {"faults.rs": RUST_PROGRAM}, [rustc, "-g", "-O", "-o", "faults", "faults.rs"])
    if d is None:
        return 0
    # The handler ran first and gave up (it aborted inside): the panic is the
    # overflow's SIGSEGV, of which the process dies.
    log = faults_then_crash(s, rw, "rust", [os.path.join(d, "faults")], ["panics caught 200"], 4,
                            ends_itself=("stack-overflow", signal.SIGSEGV))
    if log:
        txt, = s.dumps_for(os.path.dirname(log), kinds=("txt",))
        text = rw.read(txt) if txt else ""
        s.check("rust-stack-overflow", "has overflowed its stack" in rw.read(log), "Rust's own handler ran first",
                "its message is in stderr")
        # The overflowing thread's stack pointer is in the guard below its
        # stack: its walk goes on in the stack above (it ended at frame 0).
        block = re.search(r"^thread \d+ \(deep\) \[panicking\].*?(?=^\S|\Z)", text, re.M | re.S)
        frames = len(re.findall(r"^  #\d+ .*faults::recurse", block.group(0), re.M)) if block else 0
        s.check("rust-stack-overflow", frames >= 16, "the overflowing thread's stack, not only its pc",
                "%d frames of faults::recurse in thread 'deep'" % frames)
        said = re.search(r"^panicking thread \d+ \(deep\): .*, a stack overflow$", text, re.M)
        s.check("rust-stack-overflow", said and "\n  stack overflow: the fault address is " in text,
                "the report calls it a stack overflow", said.group(0) if said else text[:300])
    return 0


def run_mono(s, rw):
    if not rw.need("mono", "mcs"):
        return rw.SKIP
    d = build(s, rw, {"faults.cs": MONO_PROGRAM}, ["mcs", "-out:faults.exe", "faults.cs"])
    if d is None:
        return 0
    # Mono's crash reporter would run gdb on the process (seconds): not the point here.
    log = faults_then_crash(s, rw, "mono", ["mono", os.path.join(d, "faults.exe")], ["null references caught 8000"], 4,
                            ends_itself=("native-fault", signal.SIGABRT), env={"MONO_DEBUG": "no-gdb-backtrace"})
    if log:
        # The panic is Mono's abort; the fault it is about is in the
        # panicking thread's block of each dump, as `panicstop show` prints it.
        for kind, path in zip(("txt", "core"), s.dumps_for(os.path.dirname(log))):
            r = subprocess.run([s.tool, "show", path] if path else ["false"], capture_output=True, text=True,
                               timeout=60)
            named = re.search(r"^  \d+ ms before: signal SIGSEGV \(SEGV_MAPERR[:)].*fault address 0x8, at .*$",
                              r.stdout, re.M)
            s.check("mono-native-fault", named, "panicstop show of the %s names the fault Mono's crash reporter "
                    "was resumed from" % kind,
                    named.group(0)[:200] if named else "exit %s: %s" % (r.returncode, (r.stdout + r.stderr)[:300]))
    return 0
