/* A counter that threads bump and others wait on (CLOCK_MONOTONIC
 * timeouts): how the tests learn that a callback ran, without sleeping. */
#ifndef CTX_TEST_SIGNAL_H
#define CTX_TEST_SIGNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <time.h>

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int count;
} signal_t;

static inline void signal_init(signal_t *s) {
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cond, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&s->mu, NULL);
    s->count = 0;
}

static inline void signal_destroy(signal_t *s) {
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->mu);
}

static inline void signal_bump(signal_t *s) {
    pthread_mutex_lock(&s->mu);
    s->count++;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
}

static inline int signal_count(signal_t *s) {
    pthread_mutex_lock(&s->mu);
    int n = s->count;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* True once the count reaches `n`, false if `timeout_ns` passes first. */
static inline bool signal_wait(signal_t *s, int n, long long timeout_ns) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)(timeout_ns / 1000000000LL);
    until.tv_nsec += (long)(timeout_ns % 1000000000LL);
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    while (s->count < n && rc != ETIMEDOUT) {
        rc = pthread_cond_timedwait(&s->cond, &s->mu, &until);
    }
    bool reached = s->count >= n;
    pthread_mutex_unlock(&s->mu);
    return reached;
}

#endif
