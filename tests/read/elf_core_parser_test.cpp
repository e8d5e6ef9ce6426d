// The ELF core parser on the committed seed cores: what it reads from a
// valid core, and that every truncation and every damaged header byte is
// either accepted or rejected with ReadError, never read out of bounds (the
// ASan build of this test checks the "never").
#include "read/elf_core_parser.hpp"
#include "read/panicstop_note.hpp"

#include <gtest/gtest.h>

#include <elf.h>

#include <csignal>
#include <vector>

#include "support/child_process.hpp"

namespace panicstop::read {
namespace {

std::vector<unsigned char> corpus_file(const std::string& name) {
  std::string s = testing::read_file(PANICSTOP_FUZZ_CORPUS "/" + name);
  return {s.begin(), s.end()};
}

std::string error_of(const std::vector<unsigned char>& image) {
  try {
    report_from_core(parse_elf_core(image));
  } catch (const ReadError& e) {
    return e.what();
  }
  return "";
}

TEST(ElfCoreParser, ReadsThreadsNotesAndThePanicstopNote) {
  CoreFile core = parse_elf_core(corpus_file("valid-core-panicstop"));
  EXPECT_EQ(core.machine, EM_X86_64);
  ASSERT_EQ(core.threads.size(), 2u);
  EXPECT_EQ(core.threads[0].tid, 101);
  EXPECT_EQ(core.threads[0].signal, 6);
  EXPECT_EQ(core.threads[0].pc, 0x401000u);
  EXPECT_EQ(core.threads[0].sp, 0x7f0000000020u);
  EXPECT_EQ(core.threads[1].tid, 102);
  EXPECT_TRUE(core.has_prpsinfo);
  EXPECT_EQ(core.pid, 100);
  EXPECT_EQ(core.command, "demo");
  EXPECT_EQ(core.arguments, "demo --crash");
  EXPECT_EQ(core.siginfo_signal, 6);
  EXPECT_EQ(core.auxv_entries, 2u);
  ASSERT_EQ(core.files.size(), 1u);
  EXPECT_EQ(core.files[0].path, "/nonexistent/demo");
  EXPECT_EQ(core.load_segments, 1u);
  ASSERT_TRUE(core.panicstop_note.has_value());

  Report r = report_from_core(core);
  EXPECT_EQ(r.kind, Report::Kind::kCore);
  EXPECT_EQ(r.message, "assertion failed: queue not empty");
  EXPECT_EQ(r.panicking_tid, 101);
  EXPECT_EQ(r.signal, 6);
  ASSERT_EQ(r.threads.size(), 2u);
  EXPECT_EQ(r.threads[0].name, "main");
  EXPECT_EQ(r.threads[0].state, "panicking");
  EXPECT_EQ(r.threads[1].name, "worker_1");
  ASSERT_EQ(r.locks.size(), 1u);
  EXPECT_EQ(r.locks[0].address, "0x7f0000001000");
  EXPECT_EQ(r.locks[0].kind, "mutex");
  EXPECT_EQ(r.locks[0].owner, 102);
  ASSERT_EQ(r.waits.size(), 1u);
  EXPECT_EQ(r.waits[0].mode, "exclusive");
  ASSERT_EQ(r.nested.size(), 1u);
  EXPECT_EQ(r.nested[0].message, "fault in hook");
  EXPECT_EQ(r.nested[0].step, 3);
  EXPECT_EQ(r.not_stopped, std::vector<int>{103});
}

TEST(ElfCoreParser, CoreWithoutNoteSaysWhoseCoreItIs) {
  Report r = report_from_core(parse_elf_core(corpus_file("valid-core-no-note")));
  EXPECT_EQ(r.message, "no panicstop note: core of 100 (signal 6)");
  EXPECT_FALSE(r.has_panicstop_note);
  EXPECT_EQ(r.threads[0].name, "demo");
}

// A thread that did not stop, as the PANICSTOP note describes it: the same
// "did not stop" line a text report has, and the fields for JSON.
TEST(ElfCoreParser, PanicstopNoteDescribesThreadsThatDidNotStop) {
  Report r;
  Thread kernel;
  kernel.tid = 12;
  kernel.has_registers = true;
  r.threads.push_back(kernel);
  apply_panicstop_note(
      "version=1\nmessage=m\npanicking_tid=11\nsignal=6\n"
      "thread=11 name=main state=panicking\n"
      "thread=12 name=reader state=not_stopped kernel_state=S registers=kernel kernel_view=syscall syscall=0 "
      "syscall_name=read wchan=anon_pipe_read stop_signal_blocked=hard\n"
      "thread=13 name=spin state=not_stopped kernel_state=R registers=none kernel_view=running\n"
      "thread=14 name=late state=not_stopped kernel_state=D registers=kernel kernel_view=blocked future_key=1\n",
      r);
  ASSERT_EQ(r.threads.size(), 4u);
  const Thread& reader = r.threads[0];
  EXPECT_EQ(reader.tid, 12);
  EXPECT_TRUE(reader.did_not_stop);
  EXPECT_EQ(reader.kernel_state, "S");
  EXPECT_EQ(reader.register_source, "kernel");
  EXPECT_EQ(reader.syscall, std::optional<long>(0));
  EXPECT_EQ(reader.syscall_name, "read");
  EXPECT_EQ(reader.wchan, "anon_pipe_read");
  EXPECT_EQ(reader.notes, std::vector<std::string>{"did not stop: state S, blocked in syscall 0 (read), wchan "
                                                   "anon_pipe_read, hard-stop signal blocked; pc and sp from "
                                                   "/proc/self/task/12/syscall"});
  EXPECT_EQ(reader.no_registers, "");
  const Thread& main = r.threads[1];
  EXPECT_FALSE(main.did_not_stop);
  EXPECT_TRUE(main.notes.empty());
  const Thread& spin = r.threads[2];
  EXPECT_TRUE(spin.did_not_stop);
  EXPECT_EQ(spin.register_source, "none");
  EXPECT_EQ(spin.no_registers, "the thread was running");
  EXPECT_EQ(spin.notes, std::vector<std::string>{"did not stop: state R, running; no registers"});
  EXPECT_EQ(r.threads[3].notes,
            std::vector<std::string>{"did not stop: state D, blocked outside a system call; pc and sp from "
                                     "/proc/self/task/14/syscall"});
}

// A thread beyond the registry's slots stops without saving registers: the
// note has its kernel view but state=stopped, and the core must not read as
// if it had not stopped.
TEST(ElfCoreParser, PanicstopNoteKeepsAStoppedThreadWithoutRegistersStopped) {
  const std::string note = std::string("version=1\nmessage=m\npanicking_tid=11\nsignal=6\n") +
                           "thread=11 name=main state=panicking\n" +
                           "thread=12 name=worker state=stopped kernel_state=S registers=kernel " +
                           "kernel_view=syscall syscall=202 syscall_name=futex\n";
  Report r;
  apply_panicstop_note(note, r);
  ASSERT_EQ(r.threads.size(), 2u);
  const Thread& worker = r.threads[1];
  EXPECT_EQ(worker.tid, 12);
  EXPECT_EQ(worker.state, "stopped");
  EXPECT_FALSE(worker.did_not_stop);
  EXPECT_EQ(worker.notes, std::vector<std::string>{"stopped, registers not saved (no slot of its own): state S, "
                                                   "blocked in syscall 202 (futex); pc and sp from "
                                                   "/proc/self/task/12/syscall"});
  EXPECT_TRUE(r.not_stopped.empty());
}

// An abort after the program's handler resumed a fault elsewhere (Mono's
// crash reporter): the panicking thread's block names that fault, as the
// text report does; the line comes before the thread's, as the writer puts it.
TEST(ElfCoreParser, PanicstopNoteNamesTheFaultAnAbortWasAbout) {
  const std::string note = std::string("version=1\nmessage=m\npanicking_tid=11\nsignal=6\n") +
                           "earlier_fault=11 code=1 address=0x8 pc=0x7f0000001234 resumed_pc=0x5500000009d0 " +
                           "ms_before=12\n" + "note=the stop repaired a lock first\n" +
                           "thread=11 name=main state=panicking\n";
  Report r;
  apply_panicstop_note(note, r);
  ASSERT_EQ(r.threads.size(), 1u);
  EXPECT_EQ(r.threads[0].notes,
            std::vector<std::string>{"12 ms before: signal SIGSEGV (SEGV_MAPERR), fault address 0x8, at "
                                     "0x7f0000001234; the program's handler resumed the thread at 0x5500000009d0 "
                                     "instead of returning to it"});
  EXPECT_EQ(r.threads[0].earlier_fault_pc, 0x7f0000001234u) << "its frame is looked up as the faulting instruction";
  EXPECT_EQ(r.other_lines, std::vector<std::string>{"note: the stop repaired a lock first"});
  for (const char* bad_line : {"earlier_fault=11 ms_before=x", "earlier_fault=11 pc=1234", "earlier_fault=11 pc=0x"}) {
    Report bad;
    EXPECT_THROW(apply_panicstop_note("version=1\n" + std::string(bad_line) + "\n", bad), ReadError) << bad_line;
  }
}

// A live dump's note: no signal, no message, and its capturing thread
// written as the panicking one; the core's NT_PRSTATUS gives that thread
// SIGSTOP for debuggers. None of that may read as a crash.
TEST(ElfCoreParser, LiveDumpNoteIsNoPanic) {
  Report r;
  Thread dumper;
  dumper.tid = 11;
  dumper.signal = SIGSTOP;
  dumper.has_registers = true;
  r.threads.push_back(dumper);
  r.signal = SIGSTOP;
  apply_panicstop_note("version=1\nmessage=\npanicking_tid=11\nsignal=0\n"
                       "thread=11 name=main state=panicking\nthread=12 name=worker state=stopped\n",
                       r);
  EXPECT_TRUE(r.live_dump);
  EXPECT_EQ(r.dumping_tid, 11);
  EXPECT_EQ(r.panicking_tid, 0);
  EXPECT_EQ(r.signal, 0);
  EXPECT_EQ(r.message, kLiveDumpMessage);
  ASSERT_EQ(r.threads.size(), 2u);
  EXPECT_EQ(r.threads[0].state, "dumping");
  EXPECT_EQ(r.threads[0].signal, 0);
  EXPECT_EQ(r.threads[1].state, "stopped");

  // A panic always has a signal; one with a message but none is still
  // shown as written, not taken for a live dump.
  for (const char* note : {"version=1\nmessage=\npanicking_tid=11\nsignal=6\nthread=11 name=main state=panicking\n",
                           "version=1\nmessage=m\npanicking_tid=11\nsignal=0\nthread=11 name=main state=panicking\n"}) {
    Report crash;
    apply_panicstop_note(note, crash);
    EXPECT_FALSE(crash.live_dump) << note;
    EXPECT_EQ(crash.panicking_tid, 11) << note;
    EXPECT_EQ(crash.threads[0].state, "panicking") << note;
  }
}

// Cut at every length: refused (one line) while no thread's registers are
// complete; from then on read, with as many threads as lie before the cut
// and the cut said, never taken for a whole core.
TEST(ElfCoreParser, EveryTruncationIsRefusedOrSaidToBeTruncated) {
  std::vector<unsigned char> good = corpus_file("valid-core-panicstop");
  // The writer's layout (fuzz/make_corpus.py): ELF header, two program
  // headers, then the notes, the first an NT_PRSTATUS of 12 + 8 + 336 bytes.
  const size_t first_thread_end = 64 + 2 * 56 + 12 + 8 + 336;
  size_t threads_before = 0;
  for (size_t length = 0; length < good.size(); ++length) {
    std::vector<unsigned char> prefix(good.begin(), good.begin() + static_cast<long>(length));
    std::string error = error_of(prefix);
    EXPECT_EQ(error.find('\n'), std::string::npos);
    if (length < first_thread_end) {
      EXPECT_FALSE(error.empty()) << "accepted a core cut at " << length << " of " << good.size() << " bytes";
      continue;
    }
    ASSERT_EQ(error, "") << "cut at " << length;
    CoreFile core = parse_elf_core(prefix);
    Report report = report_from_core(core);
    ASSERT_TRUE(core.truncation.has_value()) << "cut at " << length;
    ASSERT_TRUE(report.truncated.has_value());
    EXPECT_EQ(report.truncated->file_bytes, length);
    EXPECT_EQ(report.truncated->expected_bytes, good.size());
    EXPECT_NE(report.warnings.at(0).find("core truncated at " + std::to_string(length) + " of "), std::string::npos);
    EXPECT_GE(core.threads.size(), threads_before) << "cut at " << length;
    threads_before = core.threads.size();
  }
  EXPECT_EQ(threads_before, 2u);
  EXPECT_FALSE(parse_elf_core(good).truncation.has_value());
}

TEST(ElfCoreParser, DamagedHeaderBytesNeverEscapeAsAnythingButReadError) {
  std::vector<unsigned char> good = corpus_file("valid-core-panicstop");
  // Every byte of the ELF header and program headers, and the first notes,
  // set to values that make sizes and offsets absurd.
  size_t limit = std::min<size_t>(good.size(), 64 + 2 * 56 + 400);
  for (size_t i = 0; i < limit; ++i) {
    for (unsigned char value : {0x00, 0x7f, 0x80, 0xff}) {
      std::vector<unsigned char> bad = good;
      bad[i] = value;
      error_of(bad);  // must not crash or throw anything else
    }
  }
}

TEST(ElfCoreParser, NamesTheProblem) {
  struct Case {
    const char* file;
    const char* error;
  } cases[] = {
      {"damaged-elf32", "64-bit cores only"},
      {"damaged-not-core", "not a core file: ELF ET_EXEC"},
      {"damaged-wrong-machine", "machine 3"},
      {"damaged-phnum-huge", "65534 program headers"},
      {"damaged-note-desc-past-segment", "descriptor size 4294967280 runs past the end of the segment"},
      {"damaged-note-name-past-segment", "name size 4294967280 runs past the end of the segment"},
      {"damaged-nt-file-huge-count", "do not fit"},
      {"damaged-prstatus-wrong-size", "NT_PRSTATUS has 200 bytes, expected 336"},
      {"damaged-note-segment-past-eof", "runs past the end of the file (1744 bytes) and over a PT_LOAD segment"},
      {"damaged-notes-truncated", "truncated core: 400 of 1744 bytes, cut before any thread's registers"},
      {"damaged-no-threads", "no NT_PRSTATUS"},
      {"damaged-panicstop-version", "version 9"},
  };
  for (const Case& c : cases) {
    std::string error = error_of(corpus_file(c.file));
    EXPECT_NE(error.find(c.error), std::string::npos) << c.file << ": " << error;
  }
}

}  // namespace
}  // namespace panicstop::read
