// Heap sort over a caller's array: no recursion, no allocation, O(n log n)
// for any input, so crash-path code can order what it captured.
#pragma once

#include <cstddef>

namespace panicstop::sys {

// Sorts a[0, n) so that less(a[i], a[j]) never holds for i > j. Not stable.
template <typename T, typename Less>
void heap_sort(T* a, size_t n, Less less) noexcept {
  auto sift_down = [&](size_t root, size_t end) {
    while (2 * root + 1 < end) {
      size_t child = 2 * root + 1;
      if (child + 1 < end && less(a[child], a[child + 1])) ++child;
      if (!less(a[root], a[child])) return;
      T tmp = a[root];
      a[root] = a[child];
      a[child] = tmp;
      root = child;
    }
  };
  for (size_t start = n / 2; start-- > 0;) sift_down(start, n);
  for (size_t end = n; end-- > 1;) {
    T tmp = a[0];
    a[0] = a[end];
    a[end] = tmp;
    sift_down(0, end);
  }
}

}  // namespace panicstop::sys
