#!/usr/bin/env bash
# Checks docs/DESIGN.md, section 4, invariant 5, on the compiled objects: no object file of a
# crash-path layer (sys, thread, lock, lockclass, stop, panic, snapshot, dump, and kdb,
# which runs with every other thread stopped) may refer to an allocator,
# stdio/iostreams, the dynamic loader's lookups, a non-panic-aware lock, or
# exceptions. Setup-only code lives in files named *_setup.cpp, which
# are exempt. Usage: check-crash-path.sh OBJECT...
# NM names the nm for the objects' architecture (a cross build passes its own).
set -euo pipefail

forbidden='^(malloc|calloc|realloc|free|posix_memalign|aligned_alloc|memalign|valloc|_Zn[wa].*|_Zd[la].*|printf|fprintf|vfprintf|sprintf|vsprintf|snprintf|vsnprintf|dprintf|vdprintf|puts|fputs|fputc|putchar|fwrite|fopen|fdopen|fclose|fflush|perror|strerror|syslog|_ZSt4cout|_ZSt4cerr|_ZSt4clog|dl_iterate_phdr|dladdr|dladdr1|dlopen|dlsym|dlvsym|pthread_mutex_lock|pthread_mutex_trylock|pthread_mutex_timedlock|pthread_rwlock_.*|pthread_cond_wait|pthread_cond_timedwait|__cxa_throw|__cxa_allocate_exception|__cxa_rethrow|_Unwind_RaiseException|backtrace|backtrace_symbols.*|getenv|secure_getenv|setenv|localtime|localtime_r|gmtime|strftime|qsort)$'
crash_layers='/(sys|thread|lock|lockclass|stop|panic|snapshot|dump|kdb)/'

checked=0
bad=0
for obj in "$@"; do
  [[ "$obj" =~ $crash_layers ]] || continue
  [[ "$obj" == *_setup.cpp.o ]] && continue
  checked=$((checked + 1))
  # Undefined symbols, demangling off so the patterns see the raw names; strip
  # glibc version suffixes such as @GLIBC_2.2.5.
  # An nm that cannot read the object must fail the check, not pass it empty.
  if ! undefined=$("${NM:-nm}" -u "$obj"); then
    echo "crash path: ${NM:-nm} could not read $obj (set NM to the objects' architecture's nm)" >&2
    exit 1
  fi
  hits=$(echo "$undefined" | awk '{print $NF}' | sed 's/@.*//' | grep -E "$forbidden" || true)
  if [[ -n "$hits" ]]; then
    bad=1
    echo "crash path: $obj refers to:" >&2
    echo "$hits" | sed 's/^/    /' >&2
    echo "$hits" | c++filt | paste -d' ' /dev/null - | sed 's/^/   demangled:/' >&2
  fi
done
if [[ $checked -eq 0 ]]; then
  echo "crash path: no object files of the crash-path layers were given" >&2
  exit 1
fi
if [[ $bad -ne 0 ]]; then
  echo "crash path: move setup-only code into a *_setup.cpp file, or use sys:: raw calls" >&2
  exit 1
fi
echo "crash path: $checked object files checked, no forbidden symbols"
