/* A multithreaded C program that knows nothing of panicstop: three threads
 * park in pause(), and a fourth, made by the program itself, overflows its
 * stack. `panicstop run` must still turn that into a dump of every thread. */
#include <pthread.h>
#include <unistd.h>

static volatile int keep_going = 1; /* opaque to the compiler: the recursion is "finite" */

static int recurse_forever(int depth) {
  volatile char frame[1024];
  frame[0] = (char)depth;
  if (!keep_going) return frame[0];
  return recurse_forever(depth + 1) + frame[0];
}

static void* parked_worker(void* arg) {
  (void)arg;
  for (;;) pause();
  return 0;
}

static void* overflowing_worker(void* arg) {
  (void)arg;
  return (void*)(long)recurse_forever(0);
}

int main(void) {
  pthread_t threads[4];
  for (int i = 0; i < 3; ++i) pthread_create(&threads[i], 0, parked_worker, 0);
  pthread_create(&threads[3], 0, overflowing_worker, 0);
  pthread_join(threads[3], 0);
  return 0;
}
