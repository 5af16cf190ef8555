// Cross-core latency on this machine: two threads pinned to CPUs 0 and 1 hand a counter back and
// forth through one cache line; prints the round trip. On the shared EPYC Zen 3 guest of
// BENCHMARKS §7.34 it read 105–117 ns in the faster state and 480–530 ns in the slow one, while
// the FMA rate and memory bandwidth did not move: run it beside any two-thread timing there.
//
//   clang -O2 bench/core_pingpong.c -o /tmp/core_pingpong -lpthread && /tmp/core_pingpong
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#define ROUNDS 2000000
static _Atomic int flag __attribute__((aligned(64)));

static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void *answer(void *unused) {
    (void)unused;
    pin(1);
    for (int i = 0; i < ROUNDS; i++) {
        while (atomic_load_explicit(&flag, memory_order_acquire) != 2 * i + 1) {}
        atomic_store_explicit(&flag, 2 * i + 2, memory_order_release);
    }
    return NULL;
}

int main(void) {
    pthread_t other;
    pin(0);
    pthread_create(&other, NULL, answer, NULL);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < ROUNDS; i++) {
        atomic_store_explicit(&flag, 2 * i + 1, memory_order_release);
        while (atomic_load_explicit(&flag, memory_order_acquire) != 2 * i + 2) {}
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    pthread_join(other, NULL);
    const double ns = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / ROUNDS;
    printf("CPU 0 <-> 1: round trip %.1f ns\n", ns);
    return 0;
}
