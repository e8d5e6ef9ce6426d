#!/usr/bin/env bash
# Holds a shared library's dynamic symbol table to an allow-list: every
# defined dynamic symbol (demangled) must be on the list, and every plain line
# of the list must be exported. libpanicstop.so exports the public API, the
# panicstop::detail symbols the headers' inline code reaches, and the
# interposed C functions; nothing else (include/panicstop/export.hpp says why).
# Run as the test `package.exports`; `package.an_unlisted_export_fails` shows
# that an export missing from the list fails it.
#
# The list: one demangled name per line, required; a line "@ARCH NAME"
# (ARCH: x86_64 or aarch64) requires NAME of a library for that machine only,
# for a name that differs between architectures; a line "~ REGEX" allows the
# names matching the extended regular expression without requiring any (for
# what a compiler or build type may add); blank lines and # comments are
# skipped.
# Usage: check-exports.sh LIST SHARED_LIBRARY...
# NM names the nm to use (the CMake test passes CMAKE_NM, a cross build's
# own). Without it, each library is read by an nm for its ELF machine: the
# host's nm for the host's machine, else <triple>-nm, else llvm-nm, which
# reads every target. (Debian's host nm happens to read aarch64 too, through
# its generic ELF target; an nm configured for its own machine alone does not.)
set -euo pipefail

# The e_machine of an ELF file, as a number; fails on anything else.
elf_machine() {
  local -a b
  read -r -a b <<<"$(od -An -tu1 -N20 -v "$1" | tr '\n' ' ')"
  [[ ${#b[@]} -eq 20 && ${b[0]} -eq 127 && ${b[1]} -eq 69 && ${b[2]} -eq 76 && ${b[3]} -eq 70 ]] || return 1
  # EI_DATA: 1 little-endian, 2 big-endian.
  if [[ ${b[5]} -eq 2 ]]; then
    echo $((b[18] * 256 + b[19]))
  else
    echo $((b[19] * 256 + b[18]))
  fi
}

# The architecture (as "@ARCH" lines name it) of an ELF machine number: the
# two panicstop is built for.
machine_arch() {
  case $1 in
    62) echo x86_64 ;;
    183) echo aarch64 ;;
    *) return 1 ;;
  esac
}

host_machine() {
  case $(uname -m) in
    x86_64) echo 62 ;;
    aarch64 | arm64) echo 183 ;;
    *) echo 0 ;;
  esac
}

# The nm that reads LIB, of ELF machine MACHINE.
nm_for() {  # LIB MACHINE
  if [[ -n ${NM:-} ]]; then
    echo "$NM"
    return
  fi
  if [[ $2 -eq $(host_machine) ]]; then
    echo nm
    return
  fi
  local arch triple=
  if arch=$(machine_arch "$2") && triple=$arch-linux-gnu && command -v "$triple-nm" >/dev/null; then
    echo "$triple-nm"
  elif command -v llvm-nm >/dev/null; then
    echo llvm-nm
  else
    echo "exports: $1 is for ELF machine $2, not this host's; no nm for it" \
         "(Debian: binutils-${triple:-<triple>}, or llvm; or set NM)" >&2
    return 1
  fi
}

list=${1:?usage: check-exports.sh LIST SHARED_LIBRARY...}
shift
[[ $# -gt 0 ]] || { echo "exports: no shared library given" >&2; exit 1; }

declare -A common=()
arch_lines=()  # "ARCH NAME"
regexes=()
while IFS= read -r line || [[ -n "$line" ]]; do
  [[ -z "$line" || "$line" == \#* ]] && continue
  if [[ "$line" == "~ "* ]]; then
    regexes+=("${line#\~ }")
  elif [[ "$line" == @* ]]; then
    arch_lines+=("${line#@}")
  else
    common["$line"]=1
  fi
done <"$list"

bad=0
for lib in "$@"; do
  machine=$(elf_machine "$lib") || { echo "exports: $lib is not an ELF file" >&2; exit 1; }
  arch=$(machine_arch "$machine") || arch="ELF machine $machine"
  declare -A listed=()
  for name in "${!common[@]}"; do
    listed["$name"]=1
  done
  for entry in "${arch_lines[@]}"; do
    [[ "${entry%% *}" == "$arch" ]] && listed["${entry#* }"]=1
  done
  nm=$(nm_for "$lib" "$machine")
  # Read into a variable first, so that an nm that fails fails the check.
  table=$("$nm" -D --defined-only -C "$lib") || { echo "exports: $nm could not read $lib" >&2; exit 1; }
  # "VALUE TYPE NAME": the name may hold spaces once demangled.
  mapfile -t exports < <(cut -d' ' -f3- <<<"$table" | sed 's/@.*//' | grep -v '^$' | sort -u)
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
  unset seen listed
  lib_bad=0
  if [[ ${#unexpected[@]} -gt 0 ]]; then
    lib_bad=1
    echo "exports: $lib exports ${#unexpected[@]} symbol(s) not in $list:" >&2
    printf '    %s\n' "${unexpected[@]}" >&2
  fi
  if [[ ${#missing[@]} -gt 0 ]]; then
    lib_bad=1
    echo "exports: $lib no longer exports ${#missing[@]} listed symbol(s):" >&2
    printf '    %s\n' "${missing[@]}" | sort >&2
  fi
  if [[ $lib_bad -ne 0 ]]; then
    bad=1
    continue
  fi
  echo "exports: $lib exports ${#exports[@]} symbols, all listed, none missing ($arch, read with $nm)"
done
if [[ $bad -ne 0 ]]; then
  echo "exports: an internal symbol is exported only if inline code in include/panicstop/ needs it:" >&2
  echo "    then mark its declaration PANICSTOP_EXPORT and list it; otherwise keep it unmarked (hidden)." >&2
  echo "    Interposed C functions are exported by their definitions (PANICSTOP_INTERPOSER)." >&2
  echo "    A listed name that differs by architecture (a va_list parameter): one \"@ARCH NAME\" line each." >&2
  exit 1
fi
