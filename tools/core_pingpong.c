/* One cache line bounced between two CPUs: the one-way latency of a write on one core becoming
 * visible to a reader on the other (BENCHMARKS §7.32: what a layer pays when its input was
 * written by the other core). Not part of the library or of `make test`.
 *
 *   gcc -O2 -pthread tools/core_pingpong.c -o .build/core_pingpong && .build/core_pingpong [CPU_A CPU_B]
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define ROUNDS 2000000
static _Atomic int flag __attribute__((aligned(64)));
static int cpu_b = 1;

static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void *answer(void *unused) {
    (void)unused;
    pin(cpu_b);
    for (int i = 0; i < ROUNDS; i++) {
        while (atomic_load_explicit(&flag, memory_order_acquire) != 2 * i + 1) {}
        atomic_store_explicit(&flag, 2 * i + 2, memory_order_release);
    }
    return NULL;
}

int main(int argc, char **argv) {
    int cpu_a = argc > 2 ? atoi(argv[1]) : 0;
    if (argc > 2) cpu_b = atoi(argv[2]);
    pin(cpu_a);
    pthread_t other;
    pthread_create(&other, NULL, answer, NULL);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < ROUNDS; i++) {
        atomic_store_explicit(&flag, 2 * i + 1, memory_order_release);
        while (atomic_load_explicit(&flag, memory_order_acquire) != 2 * i + 2) {}
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    pthread_join(other, NULL);
    double ns = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / ROUNDS;
    printf("CPUs %d and %d: round trip %.1f ns, one way %.1f ns\n", cpu_a, cpu_b, ns, ns / 2);
    return 0;
}
