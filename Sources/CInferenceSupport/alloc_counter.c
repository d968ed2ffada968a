// Per-thread heap allocation counter, so tests and `bench model` can prove the inference hot path makes
// no allocations. On glibc the allocator entry points are defined here and forward to glibc's own
// implementation (__libc_malloc & co., exported for exactly this purpose), adding one thread-local
// increment; everything else about the allocator is unchanged (free is not wrapped). The TLS variable
// uses the initial-exec model so the counter itself never allocates.
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include "alloc_counter.h"

#if defined(__linux__) && defined(__GLIBC__)

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static __thread unsigned long long di_allocs __attribute__((tls_model("initial-exec")));

void *malloc(size_t n) { di_allocs++; return __libc_malloc(n); }
void *calloc(size_t count, size_t size) { di_allocs++; return __libc_calloc(count, size); }
void *realloc(void *p, size_t n) { di_allocs++; return __libc_realloc(p, n); }
void *memalign(size_t alignment, size_t n) { di_allocs++; return __libc_memalign(alignment, n); }
void *aligned_alloc(size_t alignment, size_t n) { di_allocs++; return __libc_memalign(alignment, n); }

int posix_memalign(void **out, size_t alignment, size_t n) {
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return EINVAL;
    di_allocs++;
    void *p = __libc_memalign(alignment, n);
    if (p == NULL) return ENOMEM;
    *out = p;
    return 0;
}

unsigned long long di_thread_allocation_count(void) { return di_allocs; }
int di_allocation_counting_available(void) { return 1; }

#else

unsigned long long di_thread_allocation_count(void) { return 0; }
int di_allocation_counting_available(void) { return 0; }

#endif
