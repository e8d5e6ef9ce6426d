// The trampoline of handler_call.hpp. Its CFI describes the caller of the
// handler as the interrupted context: each register, the stack pointer (the
// CFA) and the return address (the pc) are read from the ucontext_t that a
// callee-saved register holds, as the C library's sigreturn trampoline
// describes the kernel's signal frame. The FDE is marked a signal frame
// (augmentation "S") so that the interrupted code is looked up at its pc,
// not at pc - 1.
#include "thread/handler_call.hpp"

#include <cstddef>
#include <ucontext.h>

#if defined(__x86_64__)
// ucontext_t as glibc lays it out (checked below): the general registers
// from offset 40, in the kernel's order (REG_R8 ... REG_RIP).
static_assert(offsetof(ucontext_t, uc_mcontext.gregs) == 40);
static_assert(REG_R8 == 0 && REG_RSP == 15 && REG_RIP == 16 && REG_RBX == 11);
// CFA = *(rbx + 160) (REG_RSP); each DWARF register at rbx + 40 + 8 * REG_x:
// DW_CFA_def_cfa_expression (0x0f) and DW_CFA_expression (0x10) with
// DW_OP_breg3 (0x73, rbx) and an SLEB128 offset.
asm(R"(
  .pushsection .text
  .p2align 4
  .globl panicstop_call_program_handler
  .hidden panicstop_call_program_handler
  .type panicstop_call_program_handler, @function
panicstop_call_program_handler:
  .cfi_startproc
  .cfi_signal_frame
  pushq %rbx
  .cfi_def_cfa_offset 16
  .cfi_offset %rbx, -16
  movq %rcx, %rbx
  .cfi_remember_state
  .cfi_escape 0x0f, 4, 0x73, 0xa0, 0x01, 0x06
  .cfi_escape 0x10, 8, 2, 0x73, 0x28
  .cfi_escape 0x10, 9, 2, 0x73, 0x30
  .cfi_escape 0x10, 10, 2, 0x73, 0x38
  .cfi_escape 0x10, 11, 3, 0x73, 0xc0, 0x00
  .cfi_escape 0x10, 12, 3, 0x73, 0xc8, 0x00
  .cfi_escape 0x10, 13, 3, 0x73, 0xd0, 0x00
  .cfi_escape 0x10, 14, 3, 0x73, 0xd8, 0x00
  .cfi_escape 0x10, 15, 3, 0x73, 0xe0, 0x00
  .cfi_escape 0x10, 5, 3, 0x73, 0xe8, 0x00
  .cfi_escape 0x10, 4, 3, 0x73, 0xf0, 0x00
  .cfi_escape 0x10, 6, 3, 0x73, 0xf8, 0x00
  .cfi_escape 0x10, 3, 3, 0x73, 0x80, 0x01
  .cfi_escape 0x10, 1, 3, 0x73, 0x88, 0x01
  .cfi_escape 0x10, 0, 3, 0x73, 0x90, 0x01
  .cfi_escape 0x10, 2, 3, 0x73, 0x98, 0x01
  .cfi_escape 0x10, 16, 3, 0x73, 0xa8, 0x01
  movq %rdi, %rax
  movl %esi, %edi
  movq %rdx, %rsi
  movq %rbx, %rdx
  callq *%rax
  .cfi_restore_state
  popq %rbx
  .cfi_def_cfa_offset 8
  .cfi_restore %rbx
  retq
  .cfi_endproc
  .size panicstop_call_program_handler, .-panicstop_call_program_handler
  .popsection
)");
#elif defined(__aarch64__)
// ucontext_t as glibc lays it out (checked below): x0..x30 from offset 184,
// then sp and pc. CFA = *(x19 + 432) (sp); DWARF register i (x0..x30) at
// x19 + 184 + 8 * i, except x16; the return address at x19 + 440 (pc), in
// the column of x16. Not x30's: x30 must keep its own value, or a leaf
// function that faulted would be its own caller. Not libgcc's alternate
// column 96 either: drgn refuses an .eh_frame whose CIE names a register
// it does not know. x16 (IP0) is call-clobbered, so no landing pad reads it.
// DW_OP_breg19 is 0x83.
static_assert(offsetof(ucontext_t, uc_mcontext.regs) == 184);
static_assert(offsetof(ucontext_t, uc_mcontext.sp) == 432 && offsetof(ucontext_t, uc_mcontext.pc) == 440);
asm(R"(
  .pushsection .text
  .p2align 2
  .globl panicstop_call_program_handler
  .hidden panicstop_call_program_handler
  .type panicstop_call_program_handler, %function
panicstop_call_program_handler:
  .cfi_startproc
  .cfi_signal_frame
  .cfi_return_column x16
  .cfi_register x16, x30
  hint #34
  stp x29, x30, [sp, #-32]!
  .cfi_def_cfa_offset 32
  .cfi_offset x29, -32
  .cfi_offset x30, -24
  .cfi_offset x16, -24
  str x19, [sp, #16]
  .cfi_offset x19, -16
  mov x29, sp
  mov x19, x3
  .cfi_remember_state
  .cfi_escape 0x0f, 4, 0x83, 0xb0, 0x03, 0x06
  .cfi_escape 0x10, 0x00, 3, 0x83, 0xb8, 0x01
  .cfi_escape 0x10, 0x01, 3, 0x83, 0xc0, 0x01
  .cfi_escape 0x10, 0x02, 3, 0x83, 0xc8, 0x01
  .cfi_escape 0x10, 0x03, 3, 0x83, 0xd0, 0x01
  .cfi_escape 0x10, 0x04, 3, 0x83, 0xd8, 0x01
  .cfi_escape 0x10, 0x05, 3, 0x83, 0xe0, 0x01
  .cfi_escape 0x10, 0x06, 3, 0x83, 0xe8, 0x01
  .cfi_escape 0x10, 0x07, 3, 0x83, 0xf0, 0x01
  .cfi_escape 0x10, 0x08, 3, 0x83, 0xf8, 0x01
  .cfi_escape 0x10, 0x09, 3, 0x83, 0x80, 0x02
  .cfi_escape 0x10, 0x0a, 3, 0x83, 0x88, 0x02
  .cfi_escape 0x10, 0x0b, 3, 0x83, 0x90, 0x02
  .cfi_escape 0x10, 0x0c, 3, 0x83, 0x98, 0x02
  .cfi_escape 0x10, 0x0d, 3, 0x83, 0xa0, 0x02
  .cfi_escape 0x10, 0x0e, 3, 0x83, 0xa8, 0x02
  .cfi_escape 0x10, 0x0f, 3, 0x83, 0xb0, 0x02
  .cfi_escape 0x10, 0x11, 3, 0x83, 0xc0, 0x02
  .cfi_escape 0x10, 0x12, 3, 0x83, 0xc8, 0x02
  .cfi_escape 0x10, 0x13, 3, 0x83, 0xd0, 0x02
  .cfi_escape 0x10, 0x14, 3, 0x83, 0xd8, 0x02
  .cfi_escape 0x10, 0x15, 3, 0x83, 0xe0, 0x02
  .cfi_escape 0x10, 0x16, 3, 0x83, 0xe8, 0x02
  .cfi_escape 0x10, 0x17, 3, 0x83, 0xf0, 0x02
  .cfi_escape 0x10, 0x18, 3, 0x83, 0xf8, 0x02
  .cfi_escape 0x10, 0x19, 3, 0x83, 0x80, 0x03
  .cfi_escape 0x10, 0x1a, 3, 0x83, 0x88, 0x03
  .cfi_escape 0x10, 0x1b, 3, 0x83, 0x90, 0x03
  .cfi_escape 0x10, 0x1c, 3, 0x83, 0x98, 0x03
  .cfi_escape 0x10, 0x1d, 3, 0x83, 0xa0, 0x03
  .cfi_escape 0x10, 0x1e, 3, 0x83, 0xa8, 0x03
  .cfi_escape 0x10, 0x10, 3, 0x83, 0xb8, 0x03
  mov x16, x0
  mov w0, w1
  mov x1, x2
  mov x2, x19
  blr x16
  .cfi_restore_state
  ldr x19, [sp, #16]
  .cfi_restore x19
  ldp x29, x30, [sp], #32
  .cfi_def_cfa_offset 0
  .cfi_restore x29
  .cfi_restore x30
  .cfi_register x16, x30
  ret
  .cfi_endproc
  .size panicstop_call_program_handler, .-panicstop_call_program_handler
  .popsection
)");
#else
#error "panicstop supports x86_64 and aarch64"
#endif
