#!/usr/bin/env python3
"""Writes the reader's seed corpus into fuzz/corpus/ (committed; rerun after a change).

valid-*     files `panicstop show` must accept (exit 0)
truncated-* cores cut short that it must print as far as they go, saying
            what is missing (exit 3)
damaged-*   files it must reject with one line on stderr and exit 1
The tests (tests/tools/show_test.cpp) run the tool over every file here, and
the fuzzer starts from them. The output is the same on every run (fixed
seeds, no time or path in it).
"""
import os
import random
import struct

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

ET_CORE, ET_EXEC, EM_X86_64, EM_386 = 4, 2, 62, 3
PT_LOAD, PT_NOTE = 1, 4
NT_PRSTATUS, NT_PRPSINFO, NT_AUXV, NT_SIGINFO, NT_FILE = 1, 3, 6, 0x53494749, 0x46494c45


def note(name, ntype, desc):
    name_bytes = name.encode() + b"\0"
    pad = lambda b: b + b"\0" * (-len(b) % 4)
    return struct.pack("<III", len(name_bytes), len(desc), ntype) + pad(name_bytes) + pad(desc)


def prstatus(tid, signal, pc, sp):
    regs = [0] * 27
    regs[16], regs[19] = pc, sp  # rip, rsp in user_regs_struct
    head = struct.pack("<iii", signal, 0, 0) + struct.pack("<h", signal) + b"\0\0" + b"\0" * 16
    head += struct.pack("<iiii", tid, 1, tid, tid) + b"\0" * 64
    body = head + struct.pack("<27Q", *regs) + struct.pack("<i", 1) + b"\0\0\0\0"
    assert len(body) == 336
    return body


def prpsinfo(pid, fname, args):
    body = struct.pack("<cccc4xQIIiiii", b"R", b"R", b"\0", b"\0", 0, 0, 0, pid, 1, pid, pid)
    body += fname.encode()[:15].ljust(16, b"\0") + args.encode()[:79].ljust(80, b"\0")
    assert len(body) == 136
    return body


def nt_file(entries, page_size=4096, count=None):
    body = struct.pack("<QQ", len(entries) if count is None else count, page_size)
    for start, end, off, _ in entries:
        body += struct.pack("<QQQ", start, end, off)
    return body + b"".join(p.encode() + b"\0" for *_, p in entries)


PANICSTOP_NOTE = (
    "version=1\n"
    "message=assertion failed: queue not empty\n"
    "panicking_tid=101\n"
    "signal=6\n"
    "thread=101 name=main state=panicking\n"
    "thread=102 name=worker_1 state=stopped\n"
    "lock=0x7f0000001000 kind=mutex name=queue_lock owner=102 readers=0\n"
    "wait=101 lock=0x7f0000001000 mode=exclusive\n"
    "nested=102 signal=11 step=3 message=fault in hook\n"
    "not_stopped=103\n"
).encode()


def core(notes, loads=((0x7f0000000000, b"\x11" * 64),), e_type=ET_CORE, machine=EM_X86_64, elf_class=2,
         data=1, phnum=None, note_filesz=None, phoff=64):
    note_blob = b"".join(notes)
    count = 1 + len(loads)
    note_offset = 64 + 56 * count
    load_offset = note_offset + len(note_blob)
    phdrs = struct.pack("<IIQQQQQQ", PT_NOTE, 0, note_offset, 0, 0,
                        len(note_blob) if note_filesz is None else note_filesz, 0, 4)
    blobs = b""
    for vaddr, content in loads:
        phdrs += struct.pack("<IIQQQQQQ", PT_LOAD, 6, load_offset + len(blobs), vaddr, 0, len(content), len(content), 4096)
        blobs += content
    ident = b"\x7fELF" + bytes([elf_class, data, 1, 0]) + b"\0" * 8
    ehdr = ident + struct.pack("<HHIQQQIHHHHHH", e_type, machine, 1, 0, phoff, 0, 0, 64, 56,
                               count if phnum is None else phnum, 64, 0, 0)
    return ehdr + phdrs + note_blob + blobs


def standard_notes(with_panicstop=True, first=None):
    notes = [
        first if first is not None else note("CORE", NT_PRSTATUS, prstatus(101, 6, 0x401000, 0x7f0000000020)),
        note("CORE", NT_PRPSINFO, prpsinfo(100, "demo", "demo --crash")),
        note("CORE", NT_SIGINFO, struct.pack("<iii", 6, 0, 0) + b"\0" * 116),
        note("CORE", NT_AUXV, struct.pack("<QQQQ", 6, 4096, 0, 0)),
        note("CORE", NT_FILE, nt_file([(0x400000, 0x401000, 0, "/nonexistent/demo")])),
        note("CORE", NT_PRSTATUS, prstatus(102, 0, 0x401010, 0x7f0000000030)),
    ]
    if with_panicstop:
        notes.append(note("PANICSTOP", 1, PANICSTOP_NOTE))
    return notes


# The layout of src/dump/text_report.cpp.
SAMPLE_REPORT = """panic: assertion failed: queue not empty
process 100 (demo): demo --crash
panicking thread 101 (main): SIGABRT (signal 6)
4 threads: 3 stopped, 1 not stopped

thread 101 (main) [panicking] R
  SIGABRT (signal 6)
  #0 0x401000 raise+0x10 (libc.so.6)
  #1 0x401234 _ZN4demo5crashEv+0x24 (demo)
  #2 0x401300 main+0x50 (demo)
thread 102 (worker 1) [stopped] t
  waiting for exclusive mutex "queue lock" (0x7f0000001000) held by thread 103
thread 103 (worker 2) [stopped] t
  (2 threads with this stack)
  #0 0x7f0000102000 ?? (libc.so.6+0x2000)
  #1 0x401400 worker_loop+0x8 (demo)
thread 104 (late) [not_stopped] R
  (no frames)

locks:
  0x7f0000001000 kind=mutex name=queue_lock owner=103 readers=0 word=0x67 waiters=102

nested panics:
  thread 102: SIGSEGV (signal 11) during dump: fault in hook

threads that did not stop:
  104

modules:
  0x400000-0x402000 /nonexistent/demo build-id=0011aabb (executable)
  0x7f0000100000-0x7f0000200000 /nonexistent/libc.so.6 build-id=none
"""


def mdstring(text):
    units = text.encode("utf-16-le")
    return struct.pack("<I", len(units)) + units + b"\0\0"


def minidump(version=0xA793, drop_tail=0, thread_count=None, exception=True):
    """A small x86-64 minidump: one thread with a context and a stack holding a
    frame-pointer chain, one module with a 'BpEL' build id, an exception and a
    panic_message annotation."""
    body = bytearray()
    streams = []
    base = 32 + 12 * 8  # room for 8 directory entries

    def add(data):
        while (base + len(body)) % 8:
            body.append(0)
        rva = base + len(body)
        body.extend(data)
        return rva

    stack_start, pc, fp = 0x7ffd0000, 0x401123, 0x7ffd0010
    stack = struct.pack("<QQ", 0, 0) + struct.pack("<QQ", 0, 0x401456) + b"\0" * 32
    stack_rva = add(stack)
    ctx = bytearray(1232)
    struct.pack_into("<I", ctx, 48, 0x0010000B)
    struct.pack_into("<Q", ctx, 152, stack_start)
    struct.pack_into("<Q", ctx, 160, fp)
    struct.pack_into("<Q", ctx, 248, pc)
    ctx_rva = add(bytes(ctx))
    name_rva = add(mdstring("main"))
    n = 1 if thread_count is None else thread_count
    thread = struct.pack("<IIIIQ", 101, 0, 0, 0, 0) + struct.pack("<QII", stack_start, len(stack), stack_rva)
    thread += struct.pack("<II", 1232, ctx_rva)
    rva = add(struct.pack("<I", n) + thread)
    streams.append((3, rva, 4 + 48))
    rva = add(struct.pack("<I", 1) + struct.pack("<IQ", 101, name_rva))
    streams.append((24, rva, 16))
    rva = add(struct.pack("<I", 1) + struct.pack("<QII", stack_start, len(stack), stack_rva))
    streams.append((5, rva, 20))
    mod_name = add(mdstring("/nonexistent/app"))
    cv = add(struct.pack("<I", 0x4270454C) + bytes(range(1, 21)))
    module = struct.pack("<QIIII", 0x400000, 0x10000, 0, 0, mod_name) + b"\0" * 52 + struct.pack("<II", 24, cv)
    module += b"\0" * (108 - len(module))
    rva = add(struct.pack("<I", 1) + module)
    streams.append((4, rva, 4 + 108))
    sysinfo = struct.pack("<HHHBB", 9, 6, 0, 2, 0) + b"\0" * 12 + struct.pack("<I", 0x8201) + b"\0" * 32
    rva = add(sysinfo)
    streams.append((7, rva, 56))
    if exception:
        exc = struct.pack("<IIIIQQII", 101, 0, 11, 1, 0, 0x10, 0, 0) + b"\0" * 120 + struct.pack("<II", 1232, ctx_rva)
        rva = add(exc)
        streams.append((6, rva, 168))
    key = add(struct.pack("<I", 13) + b"panic_message\0")
    value = add(struct.pack("<I", 4) + b"boom\0")
    dictionary = add(struct.pack("<III", 1, key, value))
    info = struct.pack("<I", 1) + b"\0" * 32 + struct.pack("<II", 12, dictionary) + b"\0" * 20
    rva = add(info)
    streams.append((0x43500001, rva, 64))
    header = struct.pack("<IIIIIIQ", 0x504D444D, version, len(streams), 32, 0, 1764000000, 0)
    directory = b"".join(struct.pack("<III", t, size, r) for t, r, size in streams)
    assert len(streams) <= 8
    data = header + directory.ljust(12 * 8, b"\0") + bytes(body)
    return data[: len(data) - drop_tail] if drop_tail else data


def write(name, content):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(content if isinstance(content, bytes) else content.encode())


def main():
    os.makedirs(HERE, exist_ok=True)
    for old in os.listdir(HERE):
        os.remove(os.path.join(HERE, old))
    good = core(standard_notes())
    write("valid-report.txt", SAMPLE_REPORT)
    # The writer escapes what the program wrote (messages, thread and lock
    # names, the command line): forged-looking text stays inside its line.
    write("valid-report-hostile-text.txt",
          "panic: boom\\nthread 99999 (evil) [panicking] R\\n  #0 0x1 evil+0x0 (evil)\\x1b[31m\\t\\\\\n"
          "process 100 (demo\\n): demo --name=a\\nthread 99998\n"
          "panicking thread 101 (main): SIGABRT (signal 6)\n"
          "2 threads: 1 stopped, 0 not stopped\n"
          "\n"
          "thread 101 (main) [panicking] R\n"
          "  #0 0x401000 raise+0x10 (libc.so.6)\n"
          "thread 102 (w\\nthread 99997 (x) [stopped]) [stopped] t\n"
          "  waiting for exclusive mutex \"q\\nthread 99996\" (0x7f0000001000) held by thread 101\n"
          "  #0 0x401400 worker_loop+0x8 (lib\\nthread.so)\n"
          "\n"
          "nested panics:\n"
          "  thread 102: panic during dump: again\\nthread 99995 (y) [stopped] S\n")
    write("valid-core-panicstop", good)
    write("valid-core-no-note", core(standard_notes(with_panicstop=False)))

    rng = random.Random(4)
    write("damaged-empty", b"")
    write("damaged-random-bytes", bytes(rng.randrange(256) for _ in range(512)))
    write("damaged-random-after-magic", b"\x7fELF" + bytes(rng.randrange(256) for _ in range(200)))
    write("damaged-text-not-a-report", "hello, world\n")
    for n in (4, 16, 40, 63):
        write(f"damaged-elf-header-truncated-{n}", good[:n])
    write("damaged-phdrs-truncated", good[:64 + 30])
    write("damaged-notes-truncated", good[:400])
    write_truncated_cores(good)
    write("damaged-elf32", core(standard_notes(), elf_class=1))
    write("damaged-big-endian", core(standard_notes(), data=2))
    write("damaged-not-core", core(standard_notes(), e_type=ET_EXEC))
    write("damaged-wrong-machine", core(standard_notes(), machine=EM_386))
    write("damaged-phdrs-past-eof", core(standard_notes(), phoff=1 << 40))
    write("damaged-phnum-huge", core(standard_notes(), phnum=0xfffe))
    write("damaged-phnum-extended-no-shdr", core(standard_notes(), phnum=0xffff))
    write("damaged-note-segment-past-eof", core(standard_notes(), note_filesz=1 << 62))
    huge_desc = struct.pack("<III", 5, 0xfffffff0, NT_PRSTATUS) + b"CORE\0\0\0\0"
    write("damaged-note-desc-past-segment", core([huge_desc] + standard_notes()))
    huge_name = struct.pack("<III", 0xfffffff0, 4, NT_PRSTATUS) + b"CORE"
    write("damaged-note-name-past-segment", core([huge_name]))
    write("damaged-note-header-truncated", core(standard_notes() + [b"\1\0\0\0\0\0"]))
    write("damaged-prstatus-wrong-size", core(standard_notes(first=note("CORE", NT_PRSTATUS, b"\0" * 200))))
    bad_file = struct.pack("<QQ", 1 << 60, 4096) + b"\0" * 24
    write("damaged-nt-file-huge-count", core(standard_notes() + [note("CORE", NT_FILE, bad_file)]))
    unterminated = struct.pack("<QQ", 1, 4096) + struct.pack("<QQQ", 0, 4096, 0) + b"/no/nul"
    write("damaged-nt-file-name-unterminated", core(standard_notes() + [note("CORE", NT_FILE, unterminated)]))
    write("damaged-no-note-segment", good[:64] + b"\0" * 56 * 2)
    write("damaged-no-threads", core(standard_notes()[1:2]))
    write("damaged-panicstop-version", core(standard_notes(with_panicstop=False) + [note("PANICSTOP", 1, b"version=9\n")]))
    write("damaged-panicstop-bad-number", core(standard_notes(with_panicstop=False) + [note("PANICSTOP", 1, b"panicking_tid=12x\n")]))
    write("damaged-report-bad-thread", "panic: x\nthread 12x (main) [stopped]\n")
    write("damaged-report-frame-no-address", "panic: x\nthread 1 (main) [stopped]\n  #0 main+0x1\n")
    write("damaged-report-nul", "panic: x\nthread 1 (main)\0 [stopped]\n")
    write("valid-minidump.dmp", minidump())
    write("valid-minidump-requested.dmp", minidump(exception=False))
    write("damaged-minidump-version", minidump(version=0xA792))
    write("damaged-minidump-truncated", minidump(drop_tail=200))
    write("damaged-minidump-thread-count", minidump(thread_count=1 << 30))
    write("damaged-minidump-header", minidump()[:20])
    # Found by the fuzzer: an empty message once read past the first line.
    write("valid-report-empty-message.txt", "panic: \n  (2 threads with this stack)\n  #0 0x10 ?? (libc.so.6+0x10)\n")
    write_hostile_reports()
    write_hostile_file_notes()
    write_hostile_panicstop_notes()


def write_truncated_cores(good):
    """Cores cut short: what lies before the cut is read, the rest is said to be missing."""
    notes = b"".join(standard_notes())
    notes_start = 64 + 56 * 2
    first_thread_end = notes_start + len(note("CORE", NT_PRSTATUS, prstatus(101, 6, 0x401000, 0x7f0000000020)))
    write("truncated-load-cut", good[:-10])
    write("truncated-after-notes", good[:notes_start + len(notes)])
    write("truncated-notes-after-first-thread", good[:first_thread_end + 20])
    big = core(standard_notes(), loads=[(0x7f0000000000 + 0x1000 * i, bytes([i]) * 4096) for i in range(4)])
    write("truncated-middle-of-memory", big[:len(big) - 4096 * 2 - 100])


# Text a program wrote and the writer escaped, or text no writer produced:
# the reader must never be fooled into more threads than there are headers
# at the left margin, and never crash.
def write_hostile_reports():
    invalid_utf8 = b"\xff\xfe\xc0\x80\xed\xa0\x80\xf4\x90\x80\x80\xe2\x82"
    write("valid-report-raw-control-bytes.txt",
          b"panic: \x1b[2J\x1b]0;title\x07" + invalid_utf8 + b"\r\x08\x7f\n"
          b"process 1 (\xff\xfe): \x1b[31m\n"
          b"thread 1 (\xc0\x80 \x1b[0m) [panicking] R\r\n"
          b"  #0 0x10 f\xffo\xfe+0x1 (lib\xed\xa0\x80.so)\n"
          b"  \x1b[1Afault: " + invalid_utf8 + b"\n"
          b"thread 2 (\t) [stopped]\t\x0b\x0c\n"
          b"  (no registers: \xff)\n")
    # Headers that claim more than there is; a group line with a count past 2^64.
    write("valid-report-huge-counts.txt",
          "panic: counts\n"
          "18446744073709551616 threads: 99999999999999999999 stopped, -1 not stopped\n"
          "thread 2147483647 (max) [stopped] t\n"
          "thread 1 (one) [stopped] t\n"
          "  (18446744073709551616 threads with this stack)\n"
          "  #4294967295 0xffffffffffffffff ??+0xffffffffffffffff (m+0xffffffffffffffff)\n"
          "  #1 0x0\n")
    # A forged block as a program could write it if nothing escaped it: it
    # reads as a thread (the writer's escaping is what prevents it); the
    # point here is that nothing breaks.
    write("valid-report-forged-blocks.txt",
          "panic: boom\n"
          "thread 99999 (evil) [panicking] R\n"
          "  #0 0x1 evil+0x0 (evil)\n"
          "thread 7 (real) [stopped] t\n"
          "  waiting for exclusive mutex \"q\\nthread 1\" (0x10) held by thread 99999\n"
          "locks:\n"
          "thread 99998 (after locks) [stopped]\n"
          "  lock=0x10 kind=mutex name=a\\nb owner=99999999999 readers=-1\n"
          "modules:\n"
          "  0x20-0x10 /backwards build-id=zz\n"
          "  0x10-0x20  build-id=\n"
          "  not-a-module-line\n")
    # A group sharing a stack, many threads deep (memory must not multiply).
    lines = ["panic: a pool parked in one place"]
    lines += ["thread %d (pool) [stopped] S" % (1000 + i) for i in range(64)]
    lines += ["  (64 threads with this stack)"]
    lines += ["  #%d 0x%x worker_%d+0x%x (libpool.so)" % (i, 0x400000 + i * 16, i, i) for i in range(64)]
    write("valid-report-shared-stack.txt", "\n".join(lines) + "\n")
    # Demangled C++ names, as the writer prints them once it demangles.
    write("valid-report-demangled-names.txt",
          "panic: demangled\n"
          "thread 1 (pool (io), #3 [x]) [panicking] R\n"
          "  #0 0x1000 std::thread::_State_impl<std::thread::_Invoker<std::tuple<void (*)(int), int> > >::_M_run()+0x1c"
          " (libstdc++.so.6)\n"
          "  #1 0x1001 (anonymous namespace)::worker(std::vector<int, std::allocator<int> > const&)+0x10 (demo)\n"
          "  #2 0x1002 main::{lambda(int)#1}::operator()(int) const+0x8 (demo)\n"
          "  #3 0x1003 operator+(Money, Money)+0x4 (/opt/my app (v2)/lib, x.so)\n"
          "  #4 0x1004 cold_path() [clone .cold]+0x5 (demo)\n"
          "  #5 0x1005 void (*handler_for<int>(int))(int)+0x2 (demo)\n"
          "  #6 0x1006 std::map<int, std::basic_string<char, std::char_traits<ch...+0x40 (demo)\n"
          "  #7 0x1007 f(int (*)(int, char), ...+0x7 (demo) at /src/look at this (1).cpp:12\n")
    # Found by the fuzzer: an empty state before a kernel state was printed
    # without its "[]", so show's output did not read back.
    write("valid-report-empty-state.txt", "panic: x\nthread 1 (a) [] R\n  #0 0x1 f+0x1 (m)\nthread 2 [] S\n")
    # Found by the fuzzer: a frame-like line in the modules section was kept
    # as an unknown line, printed after the last thread, and read back as
    # that thread's frame.
    write("valid-report-frame-in-modules.txt",
          "panic: x\nthread 1 (a) [stopped] S\nlocks:\n  lock=0x10 kind=mutex\nmodules:\n  #0 0x10 f+0x1 (m)\n"
          "  0x10-0x20  build-id=\n")
    write("damaged-report-frame-index-overflow.txt", "panic: x\nthread 1 (a) [stopped]\n  #99999999999999999999 0x1\n")
    write("damaged-report-thread-id-overflow.txt", "panic: x\nthread 99999999999 (a) [stopped]\n")
    write("damaged-report-state-unclosed.txt", "panic: x\nthread 1 (a) [stopped\n")
    write("damaged-report-nul-in-frame.txt", b"panic: x\nthread 1 (a) [stopped]\n  #0 0x1 f\0g (m)\n")


def write_hostile_file_notes():
    """NT_FILE tables that name what is not a module file, or lie about their sizes."""
    def with_file_note(body):
        return core(standard_notes(with_panicstop=False)[:4] + [note("CORE", NT_FILE, body)] +
                    standard_notes(with_panicstop=False)[5:])
    # Devices, a FIFO's usual places, /proc files: named as module paths, never waited on.
    special = [(0x400000 + 0x1000 * i, 0x401000 + 0x1000 * i, 0, p) for i, p in enumerate(
        ["/dev/zero", "/dev/null", "/dev/urandom", "/dev/stdin", "/proc/self/mem", "/proc/self/fd/0", "/", "",
         "relative/path", "/nonexistent/" + "x" * 4000])]
    write("valid-core-nt-file-special-paths", with_file_note(nt_file(special)))
    write("valid-core-nt-file-page-size-zero", with_file_note(nt_file(special[:2], page_size=0)))
    write("valid-core-nt-file-page-size-huge",
          with_file_note(nt_file([(0x400000, 0x401000, 1 << 62, "/x"), (0, 0xffffffffffffffff, 0xffffffffffffffff, "/y")],
                                 page_size=1 << 63)))
    write("valid-core-nt-file-overlapping",
          with_file_note(nt_file([(0x400000, 0x500000, 0, "/a"), (0x400000, 0x500000, 0, "/a"),
                                  (0x450000, 0x460000, 3, "/b"), (0x400000, 0x400000, 0, "/empty")])))
    write("valid-core-nt-file-empty", with_file_note(struct.pack("<QQ", 0, 4096)))
    write("damaged-nt-file-count-one-past", with_file_note(nt_file(special[:2], count=3)))
    write("damaged-nt-file-backwards-range", with_file_note(nt_file([(0x500000, 0x400000, 0, "/a")])))
    names_cut = nt_file(special[:3])
    write("damaged-nt-file-last-name-unterminated", with_file_note(names_cut[:-1]))
    write("damaged-nt-file-shorter-than-header", with_file_note(b"\0" * 15))


def write_hostile_panicstop_notes():
    """PANICSTOP notes no writer produced: wrong numbers fail, odd text is kept as text."""
    def with_note(text):
        return core(standard_notes(with_panicstop=False) + [note("PANICSTOP", 1, text)])
    write("valid-core-panicstop-hostile-text", with_note(
        b"version=1\n"
        b"message=line one\\nthread=99999 name=evil\x1b[31m\xff\xfe\n"
        b"thread=101 name=a=b=c state=\xc0\x80 extra words without keys\n"
        b"thread=101 name=again state=stopped\n"
        b"thread=2147483647 state=not_stopped kernel_view=running registers=none\n"
        b"thread=5 kernel_view=syscall syscall=-1 registers=kernel kernel_state=D wchan=\xff\n"
        b"lock=not-an-address kind= name=\n"
        b"wait=101\n"
        b"nested=101 message=\n"
        b"not_stopped=2147483647\n"
        b"unknown_key=1\n"
        b"=\n"
        b"no_equals_sign\n"
        b"\0\0\0"))
    many = b"version=1\nmessage=many threads\n" + b"".join(b"thread=%d name=t state=stopped\n" % (200 + i) for i in range(2000))
    write("valid-core-panicstop-many-threads", with_note(many))
    write("valid-core-panicstop-no-newline", with_note(b"version=1\nmessage=no newline at the end"))
    write("damaged-panicstop-tid-overflow", with_note(b"version=1\nthread=2147483648 name=x\n"))
    write("damaged-panicstop-negative-readers", with_note(b"version=1\nlock=0x1 readers=-1\n"))
    write("damaged-panicstop-empty-number", with_note(b"version=1\nsignal=\n"))


if __name__ == "__main__":
    main()
