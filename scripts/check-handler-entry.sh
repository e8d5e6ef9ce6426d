#!/usr/bin/env bash
# Checks that the signal-handler entry (src/thread/handler_stack.cpp) calls no
# function of its own before it has left a foreign stack. Its budget there
# (kForeignStackBytes, thread/handler_stack.hpp) assumes the raw system-call
# wrappers and the helpers it uses are inlined; a build with -fno-inline or
# similar flags would turn each into a call with a frame on the program's
# small sigaltstack, and the SmallAltStack tests only see that once the frames
# outgrow the budget. Here any call is an error.
#
# Usage: check-handler-entry.sh OBJECT...   (objects other than
# handler_stack.cpp's are passed over, so the whole library's list will do)
# OBJDUMP names the objdump for the objects' architecture.
#
# run_switched runs on panicstop's stack already; it is checked with the
# other two all the same, being compiled with the same flags.
# Allowed in run_on_handler_stack, switch_and_run and run_switched: calls
# through a register (the handler), calls and jumps among those three
# functions, jumps within a function, panicstop_call_on_stack (the switch),
# clang's terminate pad, reached only if a handler throws through the
# noexcept entry (the process ends there in any case), and on aarch64 libgcc's
# out-of-line atomics (-moutline-atomics, gcc's default there): leaf routines
# that touch no stack.
set -euo pipefail

entry='run_on_handler_stack|switch_and_run|run_switched'
outline_atomics='__aarch64_(cas|swp|ldadd|ldclr|ldeor|ldset)[0-9]+_(relax|acq|rel|acq_rel|sync)'
allowed="^(panicstop_call_on_stack|__clang_call_terminate|_ZSt9terminatev|$outline_atomics)\$"
status=0
checked=0
for obj in "$@"; do
  [[ "$obj" == */handler_stack.cpp.o ]] || continue
  checked=$((checked + 1))
  # An objdump that cannot read the object must fail the check, not pass it.
  if ! listing=$("${OBJDUMP:-objdump}" -dr --no-show-raw-insn "$obj"); then
    echo "handler entry: ${OBJDUMP:-objdump} could not read $obj" >&2
    exit 1
  fi
  report=$(echo "$listing" | awk -v entry="$entry" -v allowed="$allowed" '
    function flush() {
      if (pending == "") return
      if (target ~ /^panicstop_call_on_stack$/) switches++
      if (target !~ entry && target !~ allowed) {
        print "  " fn ": " pending
        bad++
      }
      pending = ""
    }
    /^[0-9a-f]+ <[^>]*>:$/ {
      flush()
      fn = $2; gsub(/[<>:]/, "", fn)
      in_entry = fn ~ entry
      if (in_entry) seen++
      next
    }
    !in_entry { next }
    /R_(X86_64|AARCH64)_[A-Z0-9_]+/ {
      # The relocation of the instruction before it names the real target.
      if (pending != "") { target = $NF; sub(/[-+]0x[0-9a-f]+$/, "", target); pending = pending " -> " target }
      next
    }
    {
      flush()
      # Direct branches only; GNU objdump writes the target as 1f4, llvm-objdump
      # as 0x1f4.
      if ($0 !~ /\t(callq?|jmpq?|bl|b)[ \t]+(0x)?[0-9a-f]+ </) next
      pending = $0; sub(/^[ \t]+/, "", pending)
      # <symbol+offset>: the entry functions themselves are fine (a branch
      # within one, or the tail call from the fast path).
      target = $0; sub(/.*</, "", target); sub(/>.*/, "", target); sub(/\+0x[0-9a-f]+$/, "", target)
    }
    END {
      flush()
      if (seen == 0) { print "  none of the entry functions found"; bad++ }
      # The call of the switch is always there: not finding it means this
      # listing was not understood, and finding no other call proves nothing.
      else if (switches == 0) { print "  no call of panicstop_call_on_stack found in the listing"; bad++ }
      exit (bad > 0)
    }') || {
    status=1
    echo "handler entry: $obj calls functions before leaving the foreign stack:" >&2
    echo "$report" >&2
    continue
  }
done
if [[ $checked -eq 0 ]]; then
  echo "handler entry: no handler_stack.cpp.o among the objects given" >&2
  exit 1
fi
if [[ $status -ne 0 ]]; then
  echo "handler entry: inlining is off for handler_stack.cpp (see its options in src/CMakeLists.txt), or a" \
       "function it calls needs always_inline" >&2
  exit 1
fi
echo "handler entry: $checked object(s) checked, no calls before the switch"
