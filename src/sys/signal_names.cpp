#include "sys/signal_names.hpp"

#include <csignal>

namespace panicstop::sys {

namespace {

struct CodeName {
  int sig;  // 0: any signal (the SI_* codes a sender sets)
  int code;
  const char* name;
  const char* meaning;
};

constexpr CodeName kCodes[] = {
    {0, SI_USER, "SI_USER", nullptr},
    {0, SI_TKILL, "SI_TKILL", nullptr},
    {0, SI_QUEUE, "SI_QUEUE", nullptr},
    {0, SI_KERNEL, "SI_KERNEL", nullptr},
    {SIGSEGV, SEGV_MAPERR, "SEGV_MAPERR", "address not mapped"},
    {SIGSEGV, SEGV_ACCERR, "SEGV_ACCERR", "invalid permissions"},
    {SIGBUS, BUS_ADRALN, "BUS_ADRALN", "misaligned address"},
    {SIGBUS, BUS_ADRERR, "BUS_ADRERR", "nonexistent physical address"},
    {SIGBUS, BUS_OBJERR, "BUS_OBJERR", "object-specific error"},
    {SIGFPE, FPE_INTDIV, "FPE_INTDIV", "integer divide by zero"},
    {SIGFPE, FPE_INTOVF, "FPE_INTOVF", "integer overflow"},
    {SIGFPE, FPE_FLTDIV, "FPE_FLTDIV", nullptr},
    {SIGFPE, FPE_FLTINV, "FPE_FLTINV", nullptr},
    {SIGILL, ILL_ILLOPC, "ILL_ILLOPC", "illegal opcode"},
    {SIGILL, ILL_ILLOPN, "ILL_ILLOPN", "illegal operand"},
    {SIGILL, ILL_PRVOPC, "ILL_PRVOPC", "privileged opcode"},
    {SIGTRAP, TRAP_BRKPT, "TRAP_BRKPT", nullptr},
    {SIGTRAP, TRAP_TRACE, "TRAP_TRACE", nullptr},
};

const CodeName* find_code(int sig, int code) noexcept {
  for (const CodeName& c : kCodes)
    if (c.code == code && (c.sig == 0 ? code <= 0 : c.sig == sig)) return &c;
  return nullptr;
}

}  // namespace

const char* signal_name(int sig) noexcept {
  switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGILL: return "SIGILL";
    case SIGFPE: return "SIGFPE";
    case SIGABRT: return "SIGABRT";
    case SIGTRAP: return "SIGTRAP";
    case SIGSYS: return "SIGSYS";
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGQUIT: return "SIGQUIT";
    case SIGKILL: return "SIGKILL";
    case SIGPIPE: return "SIGPIPE";
    case SIGUSR1: return "SIGUSR1";
    case SIGUSR2: return "SIGUSR2";
    case SIGHUP: return "SIGHUP";
    case SIGALRM: return "SIGALRM";
    case SIGCHLD: return "SIGCHLD";
    case SIGCONT: return "SIGCONT";
    case SIGSTOP: return "SIGSTOP";
    case SIGTSTP: return "SIGTSTP";
    case SIGTTIN: return "SIGTTIN";
    case SIGTTOU: return "SIGTTOU";
    case SIGURG: return "SIGURG";
    case SIGXCPU: return "SIGXCPU";
    case SIGXFSZ: return "SIGXFSZ";
    case SIGVTALRM: return "SIGVTALRM";
    case SIGPROF: return "SIGPROF";
    case SIGWINCH: return "SIGWINCH";
    case SIGIO: return "SIGIO";
    case SIGPWR: return "SIGPWR";
    default: return nullptr;
  }
}

const char* si_code_name(int sig, int code) noexcept {
  const CodeName* c = find_code(sig, code);
  return c != nullptr ? c->name : nullptr;
}

const char* si_code_meaning(int sig, int code) noexcept {
  const CodeName* c = find_code(sig, code);
  return c != nullptr ? c->meaning : nullptr;
}

}  // namespace panicstop::sys
