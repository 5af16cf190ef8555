/* The "ok   …" / "FAIL …" line the C test programs print for each check, counted in g_passed
 * and g_failed (per process: a forked child counts its own). Thread-safe: checks made from
 * callbacks on other threads print whole lines. Include after the program's own headers. */
#ifndef SELFXIT_TEST_CHECK_H
#define SELFXIT_TEST_CHECK_H

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

static int g_passed, g_failed;
static pthread_mutex_t g_check_mu = PTHREAD_MUTEX_INITIALIZER;

static void check(int ok, const char *fmt, ...) {
    va_list ap;
    pthread_mutex_lock(&g_check_mu);
    if (ok) g_passed++;
    else g_failed++;
    fputs(ok ? "ok   " : "FAIL ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
    pthread_mutex_unlock(&g_check_mu);
}

#endif
