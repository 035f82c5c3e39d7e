/* The best a pipelined two-copy broadcast between two cores can do, in C (no Python, no MPI).

   gcc -O2 -o /tmp/handoff_pipeline benchmarks/handoff_pipeline.c
   /tmp/handoff_pipeline BYTES CHUNK ALTERNATE     (e.g. 1048576 32768 1)

   Two processes pinned to CPUs 0 and 1 share a ring of 8 chunk slots, as treecast's node
   arena does. Per round the writer changes its buffer (one byte per page), then copies it
   into the ring chunk by chunk, publishing each; the reader copies each published chunk out
   into its buffer (with ALTERNATE = 1 into one of two buffers in turn, as an object bcast
   must, the previous result being alive) and counts it done. Printed: the median time from
   the writer's start to the reader's last chunk (one call's latency). */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SLOTS 8

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s BYTES CHUNK ALTERNATE\n", argv[0]);
        return 2;
    }
    size_t n = strtoul(argv[1], 0, 10), chunk = strtoul(argv[2], 0, 10);
    int alternate = atoi(argv[3]), rounds = n > (8u << 20) ? 30 : 300;
    size_t stride = chunk + 4096, chunks = (n + chunk - 1) / chunk;
    char *ring = mmap(0, 4096 + SLOTS * stride, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    volatile long *published = (long *)ring, *done = (long *)(ring + 64);
    char *slots = ring + 4096;
    pid_t pid = fork();
    if (pid == 0) { /* the reader */
        pin(1);
        char *dst[2] = {aligned_alloc(4096, n), aligned_alloc(4096, n)};
        memset(dst[0], 0, n);
        memset(dst[1], 0, n);
        long k = 0;
        for (int r = 0; r < rounds; r++) {
            char *out = dst[alternate ? r % 2 : 0];
            for (size_t i = 0; i < chunks; i++) {
                k++;
                while (*published < k) {
                }
                size_t pos = i * chunk, m = n - pos < chunk ? n - pos : chunk;
                memcpy(out + pos, slots + ((k - 1) % SLOTS) * stride + 2048, m);
                __atomic_thread_fence(__ATOMIC_RELEASE);
                *done = k;
            }
        }
        _exit(0);
    }
    pin(0);
    char *src = aligned_alloc(4096, n);
    for (size_t i = 0; i < n; i++) src[i] = (char)i;
    double *times = malloc(rounds * sizeof(double));
    long k = 0;
    for (int r = 0; r < rounds; r++) {
        while (*done < k) {
        }
        for (size_t i = 0; i < n; i += 4096) src[i]++;
        double t0 = now();
        for (size_t i = 0; i < chunks; i++) {
            k++;
            while (*done < k - SLOTS) {
            }
            size_t pos = i * chunk, m = n - pos < chunk ? n - pos : chunk;
            memcpy(slots + ((k - 1) % SLOTS) * stride + 2048, src + pos, m);
            __atomic_thread_fence(__ATOMIC_RELEASE);
            *published = k;
        }
        while (*done < k) {
        }
        times[r] = now() - t0;
    }
    waitpid(pid, 0, 0);
    qsort(times, rounds, sizeof(double), by_value);
    printf("| %zu | %zu | %d | %.1f us |\n", n, chunk, alternate, times[rounds / 2] * 1e6);
    return 0;
}
