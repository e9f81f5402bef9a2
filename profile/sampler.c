/*
 * sampler — exponential gaps between samples, from a private generator.
 *
 * Why exponential: if the gap G ~ Exp(mean R), the process is memoryless,
 * so at any allocation the remaining gap is again Exp(R) and an allocation
 * of S bytes is sampled with probability p(S) = 1 - exp(-S/R). At the
 * default R = 512 KiB a 4 KiB allocation is sampled with probability
 * 1 - exp(-4/512) ≈ 0.0078, a 512 KiB one with 1 - 1/e ≈ 0.63. The profile
 * un-samples each record by 1/p(S) (profile/pprof.c), which is exact in
 * expectation because every bucket holds a single size.
 */
#include "sampler.h"

#include <string.h>

/* splitmix64: turns any seed, even 0, into well-spread state words. */
static uint64_t splitmix(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t sampler_mix(uint64_t seed, uint64_t stream) {
  uint64_t x = seed ^ (stream * 0xd1b54a32d192ed03ULL);
  return splitmix(&x);
}

void sampler_seed(sampler_rng_t *rng, uint64_t seed) {
  uint64_t x = seed;
  rng->s0 = splitmix(&x);
  rng->s1 = splitmix(&x);
  if ((rng->s0 | rng->s1) == 0)
    rng->s1 = 1;
}

uint64_t sampler_next(sampler_rng_t *rng) {
  uint64_t a = rng->s0, b = rng->s1;
  rng->s0 = b;
  a ^= a << 23;
  rng->s1 = a ^ b ^ (a >> 17) ^ (b >> 26);
  return rng->s1 + b;
}

/*
 * −ln u, written out rather than taken from libm: a sample runs cold, and
 * libm's log reads lookup tables the program has long evicted (≈ 4 cache
 * misses and 50 instructions per sample, by callgrind). u = m·2^e with m in
 * [√½, √2), and ln m = 2·atanh(t), t = (m − 1)/(m + 1), |t| < 0.1716, by
 * its series to t^11: the first term left out is below 2e-11.
 */
double sampler_exp1(uint64_t bits) {
  double u = ((double)(bits >> 11) + 1.0) * 0x1.0p-53; /* (0, 1] */
  uint64_t w;
  memcpy(&w, &u, sizeof w);
  int e = (int)(w >> 52) - 1023; /* u >= 2^-53 is never subnormal */
  w = (w & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL;
  double m;
  memcpy(&m, &w, sizeof m); /* [1, 2) */
  if (m > 1.4142135623730951) {
    m *= 0.5;
    e++;
  }
  double t = (m - 1) / (m + 1), t2 = t * t;
  double series =
      t2 * (1.0 / 3 + t2 * (1.0 / 5 + t2 * (1.0 / 7 + t2 * (1.0 / 9 + t2 * (1.0 / 11)))));
  return -((double)e * 0.6931471805599453 + 2 * t * (1 + series));
}

int64_t sampler_gap(sampler_rng_t *rng, int64_t rate) {
  if (rate <= 1)
    return 0;
  double gap = sampler_exp1(sampler_next(rng)) * (double)rate;
  if (gap > 0x1.0p62)
    gap = 0x1.0p62;
  return (int64_t)gap + 1;
}
