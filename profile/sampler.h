/*
 * sampler — when to sample. Allocations are sampled as a Poisson process
 * over allocated bytes: the gap to the next sample is drawn from an
 * exponential distribution with mean `rate`, so an allocation of S bytes is
 * sampled with probability 1 - exp(-S/rate) whatever came before it.
 *
 * Pure functions over a caller-owned generator state: no locks, no libc
 * random state, unit-testable.
 */
#ifndef HEAPPROF_SAMPLER_H
#define HEAPPROF_SAMPLER_H

#include <stdint.h>

typedef struct sampler_rng {
  uint64_t s0, s1; /* xorshift128+ state; never both zero */
} sampler_rng_t;

/* Seeds the generator; equal seeds give equal sequences. */
void sampler_seed(sampler_rng_t *rng, uint64_t seed);

/* The next 64 uniformly distributed bits. */
uint64_t sampler_next(sampler_rng_t *rng);

/* A draw of Exp(1) from 64 uniform bits: −ln u, u = (bits >> 11 + 1)·2^−53
 * in (0, 1], within 1e-10 relative of libm's −log(u). */
double sampler_exp1(uint64_t bits);

/*
 * Bytes until the next sample: an exponential draw with mean `rate`,
 * rounded to a whole number of bytes, at least 1. Rate 1 gives 0 (every
 * allocation is sampled); rate <= 0 is the caller's business.
 */
int64_t sampler_gap(sampler_rng_t *rng, int64_t rate);

/* A well-mixed seed from a base seed and a stream number (thread, fork). */
uint64_t sampler_mix(uint64_t seed, uint64_t stream);

#endif /* HEAPPROF_SAMPLER_H */
