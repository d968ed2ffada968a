#include "embedded_models.h"

#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

extern const unsigned char deepinfant_reason_start[], deepinfant_reason_end[];
extern const unsigned char deepinfant_cry_crnn_start[], deepinfant_cry_crnn_end[];
extern const unsigned char deepinfant_yamnet_start[], deepinfant_yamnet_end[];
extern const unsigned char deepinfant_cry_head_start[], deepinfant_cry_head_end[];

const unsigned char *deepinfant_embedded_model_bytes(deepinfant_embedded_model which, size_t *size) {
    const unsigned char *start, *end;
    switch (which) {
    case DEEPINFANT_MODEL_REASON: start = deepinfant_reason_start; end = deepinfant_reason_end; break;
    case DEEPINFANT_MODEL_CRY_CRNN: start = deepinfant_cry_crnn_start; end = deepinfant_cry_crnn_end; break;
    case DEEPINFANT_MODEL_YAMNET: start = deepinfant_yamnet_start; end = deepinfant_yamnet_end; break;
    case DEEPINFANT_MODEL_CRY_HEAD: start = deepinfant_cry_head_start; end = deepinfant_cry_head_end; break;
    default: *size = 0; return 0;
    }
    *size = (size_t)(end - start);
    return start;
}

void deepinfant_embedded_model_drop_pages(deepinfant_embedded_model which) {
    size_t size = 0;
    const unsigned char *start = deepinfant_embedded_model_bytes(which, &size);
    if (!start || size == 0) return;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t from = ((uintptr_t)start + page - 1) & ~(page - 1);
    uintptr_t to = ((uintptr_t)start + size) & ~(page - 1);
    if (to > from) madvise((void *)from, to - from, MADV_DONTNEED);
}
