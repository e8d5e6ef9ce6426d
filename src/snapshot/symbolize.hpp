// Function names for program counters, in the crash path.
//
// Each module's ELF symbol table (.symtab, else .dynsym, with its string
// table) is read with raw system calls from the module's file (the vdso from
// memory) the first time a PC in that module is looked up, reduced to its
// function symbols and sorted in memory reserved at install. Lookup: the
// nearest function symbol at or below the address that contains it (size
// check; a zero-size symbol counts only as the nearest one). Names stay
// mangled here; the text report demangles them (sys/demangle.hpp).
//
// One session at a time (the dump writers run one after another): begin, any
// number of lookups, end.
#pragma once

#include <cstddef>
#include <cstdint>

#include "snapshot/snapshot.hpp"

namespace panicstop::detail {

inline constexpr size_t kSymbolNameMax = 256;

struct SymbolInfo {
  const SnapshotModule* module = nullptr;  // nullptr: the PC is in no module
  bool has_name = false;
  char name[kSymbolNameMax] = {};          // truncated if longer
  uintptr_t offset = 0;                    // pc minus the symbol's start
  uintptr_t module_offset = 0;             // pc minus the module's load bias
};

// Reserves the symbol arena (idempotent; called by reserve_snapshot()).
bool reserve_symbolizer() noexcept;

// Starts a session over snap's modules: forgets tables of an earlier session.
void symbolizer_begin(const ProcessSnapshot& snap) noexcept;

// Names pc. For a return address (every frame but a thread's first) pass
// is_return_address: the lookup then uses pc - 1, the call instruction, which
// matters when a call is the last instruction of a function. Returns
// out->has_name.
bool symbolize(const ProcessSnapshot& snap, uintptr_t pc, bool is_return_address, SymbolInfo* out) noexcept;

// Closes the module files the session opened.
void symbolizer_end() noexcept;

// The last path component of a module's path.
const char* module_basename(const ProcessSnapshot& snap, const SnapshotModule& m) noexcept;

}  // namespace panicstop::detail
