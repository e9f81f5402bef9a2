/*
 * test_sampler — the exponential gaps, with fixed seeds.
 *
 * Each statistical check allows 6 standard errors (two-sided normal tail
 * ≈ 2e-9 per check); with the fixed seeds used here the outcome is
 * deterministic, and a failure means the sampler changed.
 */
#include <math.h>
#include <stdio.h>

#include "sampler.h"
#include "testlib.h"

#define DRAWS 1000000

static void mean_and_shape(int64_t rate) {
  sampler_rng_t rng;
  sampler_seed(&rng, 12345);
  double sum = 0, sumsq = 0;
  /* Deciles of Exp(rate): P(G <= rate * -ln(1 - q)) = q. */
  long below[9] = {0};
  for (int i = 0; i < DRAWS; i++) {
    int64_t g = sampler_gap(&rng, rate);
    CHECK(g >= 1, "gap %lld < 1", (long long)g);
    sum += (double)g;
    sumsq += (double)g * (double)g;
    for (int d = 0; d < 9; d++)
      if ((double)g <= (double)rate * -log(1 - (d + 1) / 10.0) + 1)
        below[d]++;
  }
  double mean = sum / DRAWS, sd = sqrt(sumsq / DRAWS - mean * mean);
  /* Gaps are floor(X) + 1, X ~ Exp(rate): mean rate + 0.5, sd ≈ rate. */
  double se = (double)rate / sqrt(DRAWS);
  CHECK(fabs(mean - ((double)rate + 0.5)) < 6 * se,
        "rate %lld: mean gap %.1f, want %.1f ± %.1f", (long long)rate, mean,
        (double)rate + 0.5, 6 * se);
  CHECK(fabs(sd - (double)rate) < 0.01 * (double)rate,
        "rate %lld: sd %.1f, want ≈ %lld", (long long)rate, sd, (long long)rate);
  for (int d = 0; d < 9; d++) {
    double q = (d + 1) / 10.0, got = (double)below[d] / DRAWS;
    double qse = sqrt(q * (1 - q) / DRAWS);
    CHECK(fabs(got - q) < 6 * qse, "rate %lld: decile %d holds %.4f, want %.4f",
          (long long)rate, d + 1, got, q);
  }
  printf("rate %7lld: mean gap %.1f (sd %.1f), deciles within 6 se\n",
         (long long)rate, mean, sd);
}

/* Simulates the countdown as alloc_sampled.c runs it: an allocation of n bytes
 * is sampled when n >= the bytes left; then a fresh gap is drawn. */
static void sample_probability(int64_t rate, int64_t size) {
  sampler_rng_t rng;
  sampler_seed(&rng, 777);
  uint64_t left = (uint64_t)sampler_gap(&rng, rate);
  long sampled = 0, n = 2000000;
  for (long i = 0; i < n; i++) {
    if ((uint64_t)size < left) {
      left -= (uint64_t)size;
    } else {
      sampled++;
      left = (uint64_t)sampler_gap(&rng, rate);
    }
  }
  double p = 1 - exp(-(double)size / (double)rate);
  double got = (double)sampled / (double)n, se = sqrt(p * (1 - p) / (double)n);
  CHECK(fabs(got - p) < 6 * se, "size %lld at rate %lld: sampled %.5f, want "
        "1-exp(-S/R) = %.5f ± %.5f", (long long)size, (long long)rate, got, p,
        6 * se);
  printf("size %7lld at rate %lld: sampled fraction %.5f, 1-exp(-S/R) %.5f\n",
         (long long)size, (long long)rate, got, p);
}

static void determinism(void) {
  sampler_rng_t a, b, c;
  sampler_seed(&a, 99);
  sampler_seed(&b, 99);
  sampler_seed(&c, 100);
  int same = 1, differs = 0;
  for (int i = 0; i < 1000; i++) {
    uint64_t x = sampler_next(&a), y = sampler_next(&b), z = sampler_next(&c);
    same &= x == y;
    differs |= x != z;
  }
  CHECK(same, "equal seeds gave different sequences");
  CHECK(differs, "different seeds gave equal sequences");
  CHECK(sampler_gap(&a, 1) == 0, "rate 1 must sample every allocation");
  CHECK(sampler_mix(1, 2) != sampler_mix(1, 3), "streams must differ");
}

/* sampler_exp1 against libm's log, over the ends of its domain, every
 * binade, and a million random draws. */
static void exp1_accuracy(void) {
  sampler_rng_t rng;
  sampler_seed(&rng, 4242);
  double worst = 0;
  uint64_t worst_bits = 0;
  for (long i = 0; i < 1000000 + 64 * 3; i++) {
    uint64_t bits;
    if (i < 64 * 3) /* 2^k − 1, 2^k, 2^k + 1 (above bit 11): each binade's edges */
      bits = ((uint64_t)1 << (i / 3)) + (uint64_t)(i % 3) - 1;
    else
      bits = sampler_next(&rng);
    double u = ((double)(bits >> 11) + 1.0) * 0x1.0p-53;
    double want = -log(u), got = sampler_exp1(bits);
    CHECK(got >= 0, "exp1(%#llx) = %g < 0", (unsigned long long)bits, got);
    double err = want == 0 ? fabs(got) : fabs(got - want) / want;
    if (err > worst)
      worst = err, worst_bits = bits;
  }
  CHECK(sampler_exp1(UINT64_MAX) == 0, "exp1(u = 1) = %g, want 0",
        sampler_exp1(UINT64_MAX));
  CHECK(worst < 1e-10, "exp1 is %.3g off libm's -log at bits %#llx", worst,
        (unsigned long long)worst_bits);
  printf("exp1: worst relative difference from -log(u) %.3g\n", worst);
}

int main(void) {
  exp1_accuracy();
  determinism();
  mean_and_shape(524288);
  mean_and_shape(4096);
  sample_probability(524288, 4096);
  sample_probability(524288, 524288);
  sample_probability(4096, 100);
  printf("ok\n");
  return 0;
}
