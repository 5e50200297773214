/* Trace and span ids: a per-thread xoshiro256** generator seeded from the
 * kernel, reseeded whenever the process has forked since the last seed, so
 * two workers forked from one master never draw the same ids. */
#include "tgo-internal.h"

#include <string.h>
#include <sys/random.h>
#include <unistd.h>

atomic_uint tgo__fork_generation = 1;

static __thread uint64_t rng_state[4];
static __thread unsigned rng_generation; /* 0: never seeded on this thread */

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static void reseed(void) {
  uint64_t seed[4] = {0};
  ssize_t got = getrandom(seed, sizeof seed, GRND_NONBLOCK);
  if (got != (ssize_t)sizeof seed) {
    /* No entropy yet (early boot): mix what differs between processes. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    seed[0] ^= (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull;
    seed[1] ^= (uint64_t)getpid() << 32 ^ (uint64_t)ts.tv_sec;
    seed[2] ^= (uint64_t)(uintptr_t)&seed;
    seed[3] ^= (uint64_t)(uintptr_t)pthread_self();
  }
  if (!(seed[0] | seed[1] | seed[2] | seed[3]))
    seed[0] = 1;
  memcpy(rng_state, seed, sizeof seed);
  rng_generation = atomic_load_explicit(&tgo__fork_generation, memory_order_relaxed);
}

static inline void check_seed(void) {
  if (TGO__UNLIKELY(rng_generation != atomic_load_explicit(&tgo__fork_generation, memory_order_relaxed)))
    reseed();
}

/* One step; check_seed first. */
static inline uint64_t step64(void) {
  uint64_t *s = rng_state;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

static inline uint64_t next64(void) {
  check_seed();
  return step64();
}

void tgo__random_bytes(uint8_t *out, size_t n) {
  while (n) {
    uint64_t r = next64();
    size_t k = n < 8 ? n : 8;
    memcpy(out, &r, k);
    out += k;
    n -= k;
  }
}

/* All-zero ids are invalid in W3C trace context. */
void tgo__new_trace_id(uint8_t out[16]) {
  uint64_t hi, lo;
  check_seed(); /* once for both halves: a fork cannot come between them */
  do {
    hi = step64();
    lo = step64();
  } while (!(hi | lo));
  memcpy(out, &hi, 8);
  memcpy(out + 8, &lo, 8);
}

void tgo__new_span_id(uint8_t out[8]) {
  uint64_t r;
  do
    r = next64();
  while (!r);
  memcpy(out, &r, 8);
}
