// aarch64 half of fast_path_test.cpp (included there, after its helpers): the
// probe's instructions as objdump prints them, read into FastPath.
//
// locked_rmw is the most read-modify-writes any path through the probe
// executes (a path never runs an instruction twice, so a retry loop counts
// once): gcc copies the atomic into both arms of the "slot claimed yet?"
// branch, so a plain count would see two where every execution does one.
// A read-modify-write is an LSE atomic (cas, casal, swp, ldadd...), a call to
// one of libgcc's outline atomics (__aarch64_cas8_acq...: gcc's default on
// aarch64 Linux, which picks LSE or an ldaxr/stlxr loop at run time), or an
// exclusive store (stxr, stlxr, which ends a load/store-exclusive loop).
// TLS: `mrs xN, tpidr_el0` gives the thread pointer; local-exec offsets are
// built with movz/movk/add and used as [xTP, xOFF] or [xTP, #imm].
#pragma once
// Needs <algorithm>, <functional>, <map>, <optional> and <regex>, which
// fast_path_test.cpp includes at the top (this file lands in a namespace).

struct Aarch64Insn {
  std::string mnemonic;
  std::vector<std::string> operands;
  uint64_t address = 0;
  std::string text;
  bool rmw = false;
  bool ends = false;        // ret, br, or a jump out of the probe
  bool falls_through = true;
  std::optional<uint64_t> target;  // a branch within the probe
};

// "x12" / "w12" -> 12; "sp"/"xzr" and the rest -> -1.
inline int reg_number(const std::string& r) {
  if (r.size() < 2 || (r[0] != 'x' && r[0] != 'w')) return -1;
  for (size_t i = 1; i < r.size(); ++i)
    if (!isdigit(static_cast<unsigned char>(r[i]))) return -1;
  return std::stoi(r.substr(1));
}

inline std::optional<uint64_t> immediate(const std::string& op) {
  if (op.empty() || op[0] != '#') return std::nullopt;
  try {
    return uint64_t(std::stoll(op.substr(1), nullptr, 0));
  } catch (...) {
    return std::nullopt;
  }
}

inline std::vector<std::string> split_operands(const std::string& ops) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : ops) {
    if (c == ',') {
      out.push_back(trim(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!trim(cur).empty()) out.push_back(trim(cur));
  return out;
}

inline FastPath disassemble(const std::string& exe, const std::string& symbol) {
  FastPath fp;
  static const std::regex lse(
      "^(casp?|swp|ld(add|clr|eor|set|smax|smin|umax|umin)|st(add|clr|eor|set|smax|smin|umax|umin))(a|l|al)?(b|h)?$");
  static const std::regex exclusive_store("^st(l)?x(r|p)(b|h)?$");
  std::vector<Aarch64Insn> insns;
  std::map<int, int64_t> imm;     // register -> constant it holds
  std::map<int, int64_t> tprel;   // register -> thread pointer + offset
  for (const std::string& l : probe_lines(exe, symbol, &fp)) {
    size_t colon = l.find(":\t");
    Aarch64Insn in;
    in.address = std::stoull(trim(l.substr(0, colon)), nullptr, 16);
    std::string insn = trim(l.substr(colon + 2));
    if (size_t c = insn.find("//"); c != std::string::npos) insn = trim(insn.substr(0, c));
    if (insn.empty()) continue;
    ++fp.instructions;
    size_t ws = insn.find_first_of(" \t");
    in.mnemonic = insn.substr(0, ws);
    std::string ops = ws == std::string::npos ? std::string() : trim(insn.substr(ws));
    in.operands = split_operands(ops);
    in.text = insn;
    const std::string& m = in.mnemonic;
    in.rmw = std::regex_match(m, lse) || std::regex_match(m, exclusive_store);

    // Control flow.
    bool is_branch = m == "b" || m == "bl" || m.rfind("b.", 0) == 0 || m == "cbz" || m == "cbnz" || m == "tbz" ||
                     m == "tbnz";
    if (m == "ret") {
      in.ends = true;
      in.falls_through = false;
    } else if (m == "br" || m == "blr") {
      fp.exits.push_back("indirect: " + insn);
      in.ends = m == "br";
      in.falls_through = m == "blr";
    } else if (is_branch) {
      size_t open = ops.find('<'), close = ops.rfind('>');
      std::string label = open != std::string::npos && close != std::string::npos ? ops.substr(open + 1, close - open - 1) : "";
      bool self = label == symbol || label.rfind(symbol + "+", 0) == 0;
      size_t addr_end = open == std::string::npos ? ops.size() : open;
      size_t addr_start = ops.find_last_of(", \t", addr_end - 2);
      addr_start = addr_start == std::string::npos ? 0 : addr_start + 1;
      uint64_t to = std::stoull(trim(ops.substr(addr_start, addr_end - addr_start)), nullptr, 16);
      if (self && m != "bl") {
        in.target = to;
        in.falls_through = m != "b";
      } else {
        fp.exits.push_back(label);
        if (label.rfind("__aarch64_", 0) == 0) in.rmw = true;  // outline atomic
        if (m == "b") {
          in.ends = true;
          in.falls_through = false;
        } else if (m != "bl") {
          in.falls_through = true;  // conditional exit: the other arm goes on
        }
      }
    }

    // TLS addresses: every memory operand built on the thread pointer.
    if (size_t lb = ops.find('['); lb != std::string::npos) {
      size_t rb = ops.find(']', lb);
      std::vector<std::string> mem = split_operands(ops.substr(lb + 1, rb - lb - 1));
      int base = mem.empty() ? -1 : reg_number(mem[0]);
      bool uses_tp = false;
      for (const auto& r : mem) uses_tp |= tprel.count(reg_number(r)) != 0;
      if (uses_tp) {
        std::optional<int64_t> off;
        if (tprel.count(base) != 0) {
          if (mem.size() == 1) off = tprel[base];
          else if (auto i = immediate(mem[1])) off = tprel[base] + int64_t(*i);
          else if (imm.count(reg_number(mem[1])) != 0) off = tprel[base] + imm[reg_number(mem[1])];
        } else if (mem.size() == 2 && tprel.count(reg_number(mem[1])) != 0 && imm.count(base) != 0) {
          off = tprel[reg_number(mem[1])] + imm[base];
        }
        if (off) fp.tls_offsets.insert(*off);
        else fp.unresolved.push_back(insn);
      }
    }

    // Register contents: constants and thread-pointer offsets.
    const auto& o = in.operands;
    int dest = o.empty() ? -1 : reg_number(o[0]);
    bool writes_first = !(m.rfind("st", 0) == 0 || m == "cmp" || m == "cmn" || m == "tst" || is_branch ||
                          m == "ret" || m == "br" || m == "blr" || m == "prfm");
    std::optional<int64_t> new_imm, new_tp;
    if (m == "mrs" && o.size() == 2 && o[1] == "tpidr_el0") {
      new_tp = 0;
    } else if ((m == "movz" || m == "mov") && o.size() >= 2 && immediate(o[1])) {
      unsigned shift = o.size() == 3 && o[2].rfind("lsl #", 0) == 0 ? unsigned(std::stoi(o[2].substr(5))) : 0;
      new_imm = int64_t(*immediate(o[1]) << shift);
    } else if (m == "movk" && o.size() >= 2 && immediate(o[1]) && imm.count(dest) != 0) {
      unsigned shift = o.size() == 3 && o[2].rfind("lsl #", 0) == 0 ? unsigned(std::stoi(o[2].substr(5))) : 0;
      new_imm = int64_t((uint64_t(imm[dest]) & ~(uint64_t(0xffff) << shift)) | (*immediate(o[1]) << shift));
    } else if (m == "add" && o.size() >= 3 && tprel.count(reg_number(o[1])) != 0) {
      unsigned shift = o.size() == 4 && o[3].rfind("lsl #", 0) == 0 ? unsigned(std::stoi(o[3].substr(5))) : 0;
      if (auto i = immediate(o[2])) new_tp = tprel[reg_number(o[1])] + int64_t(*i << shift);
      else if (imm.count(reg_number(o[2])) != 0) new_tp = tprel[reg_number(o[1])] + imm[reg_number(o[2])];
    } else if (m == "add" && o.size() == 3 && imm.count(reg_number(o[1])) != 0 && tprel.count(reg_number(o[2])) != 0) {
      new_tp = tprel[reg_number(o[2])] + imm[reg_number(o[1])];
    }
    if (writes_first && dest >= 0) {
      imm.erase(dest);
      tprel.erase(dest);
      if (new_imm) imm[dest] = *new_imm;
      if (new_tp) tprel[dest] = *new_tp;
    }
    if (m == "bl" || m == "blr") {  // calls clobber x0-x18 and x30
      for (int r = 0; r <= 18; ++r) imm.erase(r), tprel.erase(r);
    }
    insns.push_back(in);
  }

  // The most read-modify-writes on any path from the entry, no instruction twice.
  std::map<uint64_t, size_t> at;
  for (size_t i = 0; i < insns.size(); ++i) at[insns[i].address] = i;
  std::vector<bool> on_path(insns.size(), false);
  int best = 0, steps = 0;
  std::function<void(size_t, int)> walk = [&](size_t i, int count) {
    if (i >= insns.size() || on_path[i] || ++steps > 200000) {
      best = std::max(best, count);
      return;
    }
    const Aarch64Insn& in = insns[i];
    count += in.rmw ? 1 : 0;
    best = std::max(best, count);
    if (in.ends) return;
    on_path[i] = true;
    if (in.target && at.count(*in.target) != 0) walk(at[*in.target], count);
    if (in.falls_through) walk(i + 1, count);
    on_path[i] = false;
  };
  if (!insns.empty()) walk(0, 0);
  fp.locked_rmw = best;
  return fp;
}
