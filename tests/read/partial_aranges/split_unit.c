// A unit in two parts, as GCC splits a function with a cold path: the
// cold part sits before the other unit's code and the hot part after it,
// so that other unit lies in the gap between this unit's ranges (the layout
// of a cgo binary's gcc_mmap.c around Go's code).
__attribute__((cold, noinline)) int split_unit_cold(int x) { return x * 11; }

int split_unit_hot(int x) { return x > 1000 ? split_unit_cold(x) : x * 3 + 1; }
