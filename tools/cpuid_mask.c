/* An LD_PRELOAD shim that makes a process see an x86 CPU without AVX-512: the kernel's CPUID
 * faulting (arch_prctl ARCH_SET_CPUID; the `cpuid_fault` flag in /proc/cpuinfo, also inside KVM
 * guests) turns every CPUID instruction into a SIGSEGV, which the handler below answers with the
 * real result minus the AVX-512 and AMX feature bits. ONNX Runtime's MLAS (and any library that
 * dispatches on CPUID at run time) then picks its AVX2 + FMA kernels, so that `bench/compare.py
 * --cpu-mask avx2` compares SelfXit's AVX2 configuration with ONNX Runtime's AVX2 kernels on an
 * AVX-512 machine: the same core and caches, both engines on 256-bit code (issue 14's AVX2
 * acceptance; not a Zen 2, whose caches and FMA units differ — say which CPU ran it).
 * A tool for benchmarks only: not part of the library, not built by `make test`.
 *
 *   clang -O2 -shared -fPIC -o .build/cpuid_mask.so tools/cpuid_mask.c
 *   LD_PRELOAD=$PWD/.build/cpuid_mask.so python3 -c 'import onnxruntime'   # runs on the AVX2 path
 *   CPUID_MASK_CHECK=1 LD_PRELOAD=$PWD/.build/cpuid_mask.so /bin/true   # leaf 7's EBX: real, masked, seen
 *
 * What stays as it was: code that read CPUID before this library's constructor ran (glibc's own
 * string functions, chosen by the dynamic loader) and XGETBV (not faulted: the OS still saves ZMM
 * state, which MLAS checks only after the CPUID bit). Faulting is per thread; threads created later
 * inherit it, and execve resets it (a child that keeps LD_PRELOAD sets it again). A SIGSEGV that is
 * not a CPUID instruction is handed to the default action (the process dies as it would have).
 * A program that installs its own SIGSEGV handler later (Swift's runtime backtracer: run Swift
 * programs with SWIFT_BACKTRACE=enable=no) would take the faults instead and crash.
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

static long set_cpuid_enabled(int enabled) { return syscall(SYS_arch_prctl, ARCH_SET_CPUID, (unsigned long)enabled); }

/// Leaf 7 subleaf 0: AVX512F, DQ, IFMA, PF, ER, CD, BW, VL (EBX); VBMI, VBMI2, VNNI, BITALG,
/// VPOPCNTDQ (ECX); 4VNNIW, 4FMAPS, VP2INTERSECT, AMX-BF16, AVX512-FP16, AMX-TILE, AMX-INT8 (EDX).
static const uint32_t mask7_ebx = (1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) | (1u << 30) | (1u << 31);
static const uint32_t mask7_ecx = (1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14);
static const uint32_t mask7_edx = (1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) | (1u << 25);
/// Leaf 7 subleaf 1: AVX512-BF16 (EAX bit 5).
static const uint32_t mask7_1_eax = 1u << 5;

static void masked_cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
    __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
    if (leaf == 7 && sub == 0) { r[1] &= ~mask7_ebx; r[2] &= ~mask7_ecx; r[3] &= ~mask7_edx; }
    if (leaf == 7 && sub == 1) r[0] &= ~mask7_1_eax;
}

static void on_segv(int sig, siginfo_t *info, void *context) {
    (void)info;
    ucontext_t *uc = context;
    greg_t *gr = uc->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)gr[REG_RIP];
    if (ip == NULL || ip[0] != 0x0F || ip[1] != 0xA2) {
        // Not ours: the default action on return re-executes the faulting instruction.
        signal(sig, SIG_DFL);
        return;
    }
    uint32_t r[4];
    set_cpuid_enabled(1);  // CPUID faults in this thread until turned back off
    masked_cpuid((uint32_t)gr[REG_RAX], (uint32_t)gr[REG_RCX], r);
    set_cpuid_enabled(0);
    gr[REG_RAX] = r[0];
    gr[REG_RBX] = r[1];
    gr[REG_RCX] = r[2];
    gr[REG_RDX] = r[3];
    gr[REG_RIP] += 2;
}

__attribute__((constructor)) static void cpuid_mask_init(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, NULL) != 0 || set_cpuid_enabled(0) != 0) {
        // Say so loudly: a benchmark that silently ran on AVX-512 would be mislabelled.
        fprintf(stderr, "cpuid_mask: CPUID faulting unavailable on this CPU/kernel; the process sees the real CPU\n");
        return;
    }
    if (getenv("CPUID_MASK_CHECK")) {
        uint32_t a, b, c, d;
        set_cpuid_enabled(1);
        __cpuid_count(7, 0, a, b, c, d);
        set_cpuid_enabled(0);
        // Volatile: cpuid.h's asm is not, and the compiler would reuse the result above.
        uint32_t seen_a = 7, seen_b, seen_c = 0, seen_d;
        __asm__ __volatile__("cpuid" : "+a"(seen_a), "=b"(seen_b), "+c"(seen_c), "=d"(seen_d));  // faults: on_segv answers
        fprintf(stderr, "cpuid_mask: leaf 7 EBX real %08x, masked %08x, seen %08x (AVX512F %s)\n", b, b & ~mask7_ebx, seen_b,
                (seen_b & (1u << 16)) ? "visible" : "hidden");
        (void)a; (void)c; (void)d;
    }
}
