#!/usr/bin/env bash
# What the public headers promise a compiler: the examples are clean under
# clang's -Wthread-safety -Werror with the annotated guards (MutexLock,
# ReaderLock), a read outside them is caught, and PANICSTOP_ASSERT's message
# format is checked like panic()'s. Each "must fail" case is paired with a
# "must pass" one, so a broken include path cannot pass for a caught mistake.
# Usage: check-headers.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1
build=$2
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
flags=(-std=c++20 -fsyntax-only -I"$src/include" -I"$build/include")

command -v clang++ >/dev/null || { echo "headers: clang++ is needed (scripts/deps.sh test installs it)" >&2; exit 1; }

for example in "$src"/examples/*.cpp; do
  clang++ "${flags[@]}" -Wthread-safety -Werror "$example"
done

cat >"$scratch/guarded.cpp" <<'CPP'
#include <panicstop/panicstop.hpp>
panicstop::Mutex m{"m"};
int x PANICSTOP_GUARDED_BY(m);
panicstop::RwLock rw{"rw"};
int y PANICSTOP_GUARDED_BY(rw);
int take() { panicstop::MutexLock hold(m); return ++x; }
int read_shared() { panicstop::ReaderLock hold(rw); return y; }
#ifdef UNGUARDED
int oops() { return x; }
#endif
CPP
clang++ "${flags[@]}" -Wthread-safety -Werror "$scratch/guarded.cpp"
if clang++ "${flags[@]}" -Wthread-safety -Werror -DUNGUARDED "$scratch/guarded.cpp" 2>"$scratch/err"; then
  echo "headers: an unguarded read of a PANICSTOP_GUARDED_BY variable compiled cleanly" >&2
  exit 1
fi
grep -q "requires holding mutex 'm'" "$scratch/err"

cat >"$scratch/assert.cpp" <<'CPP'
#include <panicstop/panicstop.hpp>
void check(int n) {
  PANICSTOP_ASSERT(n > 0);
  PANICSTOP_ASSERT(n > 0, "n=%d", n);
#ifdef BAD_FORMAT
  PANICSTOP_ASSERT(n > 0, "%s", n);
#endif
}
CPP
for cxx in g++ clang++; do
  "$cxx" "${flags[@]}" -Wall -Werror "$scratch/assert.cpp"
  if "$cxx" "${flags[@]}" -Wall -Werror -DBAD_FORMAT "$scratch/assert.cpp" 2>"$scratch/err"; then
    echo "headers: $cxx accepted PANICSTOP_ASSERT(n > 0, \"%s\", an int)" >&2
    exit 1
  fi
  grep -q 'format' "$scratch/err"
done
echo "headers: examples clean under -Wthread-safety; unguarded access and a bad assert format are caught"
