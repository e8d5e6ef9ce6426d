// The PANICSTOP note of a panicstop core (name "PANICSTOP", type "PSTP", or 1
// in cores written before 2026-12-02): text
// lines of key=value fields, written by src/dump/elf_core:
//
//   version=1
//   message=TEXT                       (value runs to the end of the line)
//   panicking_tid=N                    (a live dump: the thread that took it)
//   signal=N                           (0 for a live dump, never 0 for a panic)
//   earlier_fault=SIG code=N address=0xA pc=0xP resumed_pc=0xR ms_before=N
//                                      (a panic that names no fault of its own: the panicking
//                                       thread's last fault its handler resumed elsewhere)
//   stack_overflow=0xLO stack_hi=0xHI fault_address=0xA
//                                      (the fault is in the guard below the panicking thread's stack)
//   live_reason=TEXT                   (a live dump's reason, if it had one; to the end of the line)
//   note=TEXT                          (what the stop had to repair first, if anything; to the end
//                                       of the line; shown as the text report's "note:" line)
//   thread=TID name=NAME state=panicking|stopped|not_stopped
//     [kernel_state=S registers=kernel|none kernel_view=VIEW syscall=N syscall_name=NAME wchan=FN
//      stop_signal_blocked=hard|soft]
//     (a thread that saved no registers: what /proc showed of it)
//   lock=0xADDR kind=KIND name=NAME owner=TID readers=N
//   wait=TID lock=0xADDR mode=exclusive|shared|condvar
//   nested=TID signal=N step=N message=TEXT
//   not_stopped=TID
//
// Names have their spaces replaced by '_'. Unknown keys are ignored so a
// newer writer's note still reads.
#pragma once

#include <string_view>

#include "read/report.hpp"

namespace panicstop::read {

inline constexpr std::string_view kPanicstopNoteName = "PANICSTOP";
inline constexpr uint32_t kPanicstopNoteType = 0x50545350;
inline constexpr uint32_t kPanicstopNoteTypeBefore = 1;  // gdb read it as a prstatus of one size

// The message of a live dump's core: its note has none, and the text
// report beside it says "(none) REASON"; this, when the note names no
// reason (cores written before live_reason existed, or none was given).
inline constexpr std::string_view kLiveDumpMessage = "(none) live dump";

// Fills report.message, panicking_tid, signal, locks, waits, nested and
// not_stopped, the panicking thread's stack overflow (a note line, worded
// as the text report's) and earlier fault (a note line and
// Thread::earlier_fault_pc), the stop's note (an other_lines entry), and
// sets name/state on report.threads (adding threads the note names but the
// core has no NT_PRSTATUS for). A note with signal=0 and
// an empty message is a live dump's: the report is marked so
// (mark_live_dump, the note's panicking thread as the dumping one) and its
// message is "(none) " and the note's live_reason, as the text report says
// it, or kLiveDumpMessage. Throws ReadError for a version other than 1
// or a malformed number.
void apply_panicstop_note(std::string_view text, Report& report);

}  // namespace panicstop::read
