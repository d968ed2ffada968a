#ifndef DEEPINFANT_ALLOC_COUNTER_H
#define DEEPINFANT_ALLOC_COUNTER_H

/// Heap allocations (malloc, calloc, realloc, memalign, posix_memalign, aligned_alloc) made so far by the
/// calling thread. Counts only where `di_allocation_counting_available()` is 1 (glibc); 0 elsewhere.
unsigned long long di_thread_allocation_count(void);

/// 1 when allocations are counted (glibc: the allocator entry points are wrapped), else 0.
int di_allocation_counting_available(void);

#endif
