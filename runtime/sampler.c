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

#include <math.h>

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

int64_t sampler_gap(sampler_rng_t *rng, int64_t rate) {
  if (rate <= 1)
    return 0;
  /* u uniform in (0, 1]: 53 random bits, shifted off zero. */
  double u = ((double)(sampler_next(rng) >> 11) + 1.0) * 0x1.0p-53;
  double gap = -log(u) * (double)rate;
  if (gap > 0x1.0p62)
    gap = 0x1.0p62;
  return (int64_t)gap + 1;
}
