/* A crash the shim cannot see: the program gives SIGSEGV back to the kernel's
 * default with a raw system call, past the shim's sigaction(), as a runtime
 * that makes its own system calls can, then faults. The kernel ends it, and
 * no handler runs. */
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The kernel's struct sigaction (asm-generic, with sa_restorer). */
struct kernel_sigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)(void);
  unsigned long mask;
};

volatile uintptr_t bad_address = 16; /* read at run time: the compiler cannot see the fault coming */

int main(void) {
  struct kernel_sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.handler = SIG_DFL;
  if (syscall(SYS_rt_sigaction, SIGSEGV, &dfl, NULL, sizeof dfl.mask) != 0) return 1;
  *(volatile int *)bad_address = 1;
  return 0;
}
