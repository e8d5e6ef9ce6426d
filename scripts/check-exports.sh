#!/usr/bin/env bash
# Holds a shared library's dynamic symbol table to an allow-list: every
# defined dynamic symbol (demangled) must be on the list, and every plain line
# of the list must be exported. libpanicstop.so exports the public API, the
# panicstop::detail symbols the headers' inline code reaches, and the
# interposed C functions; nothing else (include/panicstop/export.hpp says why).
# Run as the test `package.exports`; `package.an_unlisted_export_fails` shows
# that an export missing from the list fails it.
#
# The list: one demangled name per line, required; a line "~ REGEX" allows
# the names matching the extended regular expression (for what differs between
# architectures) without requiring any; blank lines and # comments are skipped.
# Usage: check-exports.sh LIST SHARED_LIBRARY...
# NM names the nm for the library's architecture (a cross build passes its own).
set -euo pipefail
list=${1:?usage: check-exports.sh LIST SHARED_LIBRARY...}
shift
[[ $# -gt 0 ]] || { echo "exports: no shared library given" >&2; exit 1; }

declare -A listed=()
regexes=()
while IFS= read -r line || [[ -n "$line" ]]; do
  [[ -z "$line" || "$line" == \#* ]] && continue
  if [[ "$line" == "~ "* ]]; then
    regexes+=("${line#\~ }")
  else
    listed["$line"]=1
  fi
done <"$list"

bad=0
for lib in "$@"; do
  # "VALUE TYPE NAME": the name may hold spaces once demangled.
  mapfile -t exports < <("${NM:-nm}" -D --defined-only -C "$lib" | cut -d' ' -f3- | sed 's/@.*//' | sort -u)
  declare -A seen=()
  unexpected=()
  for name in "${exports[@]}"; do
    seen["$name"]=1
    [[ -n "${listed[$name]:-}" ]] && continue
    ok=0
    for re in "${regexes[@]}"; do
      if [[ "$name" =~ $re ]]; then
        ok=1
        break
      fi
    done
    [[ $ok -eq 1 ]] || unexpected+=("$name")
  done
  missing=()
  for name in "${!listed[@]}"; do
    [[ -n "${seen[$name]:-}" ]] || missing+=("$name")
  done
  unset seen
  if [[ ${#unexpected[@]} -gt 0 ]]; then
    bad=1
    echo "exports: $lib exports ${#unexpected[@]} symbol(s) not in $list:" >&2
    printf '    %s\n' "${unexpected[@]}" >&2
  fi
  if [[ ${#missing[@]} -gt 0 ]]; then
    bad=1
    echo "exports: $lib no longer exports ${#missing[@]} listed symbol(s):" >&2
    printf '    %s\n' "${missing[@]}" | sort >&2
  fi
  [[ $bad -ne 0 ]] || echo "exports: $lib exports ${#exports[@]} symbols, all listed, none missing"
done
if [[ $bad -ne 0 ]]; then
  echo "exports: an internal symbol is exported only if inline code in include/panicstop/ needs it:" >&2
  echo "    then mark its declaration PANICSTOP_EXPORT and list it; otherwise keep it unmarked (hidden)." >&2
  echo "    Interposed C functions are exported by their definitions (PANICSTOP_INTERPOSER)." >&2
  exit 1
fi
