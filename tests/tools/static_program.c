/* A statically linked program, which `panicstop run` cannot preload into. */
#include <stdio.h>

int main(void) {
  puts("the static program ran");
  return 0;
}
