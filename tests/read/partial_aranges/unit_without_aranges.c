// A unit that .debug_aranges does not list (its entry is removed after
// compiling), as Go's units are missing from a cgo binary's.
int unit_without_aranges(int x) {
  return x * 5 + 2;
}
