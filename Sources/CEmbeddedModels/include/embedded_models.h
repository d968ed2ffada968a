#ifndef DEEPINFANT_EMBEDDED_MODELS_H
#define DEEPINFANT_EMBEDDED_MODELS_H

#include <stddef.h>

/// The shipped model files, linked into the executable by models.S (`.incbin`), so that one file is the
/// whole node: a binary copied alone still has its models.
typedef enum {
    DEEPINFANT_MODEL_REASON = 0,
    DEEPINFANT_MODEL_CRY_CRNN = 1,
    DEEPINFANT_MODEL_YAMNET = 2,
    DEEPINFANT_MODEL_CRY_HEAD = 3,
} deepinfant_embedded_model;

/// The bytes of one embedded model file; `*size` receives its length. Never NULL for a known id.
const unsigned char *deepinfant_embedded_model_bytes(deepinfant_embedded_model which, size_t *size);

/// Gives back the resident pages of a model's bytes once they were copied and validated: they are clean
/// pages of the executable file, read again from it if ever touched again. Without it a loaded node keeps
/// ~5.6 MB of model bytes resident twice (the executable's copy and the parsed weights).
void deepinfant_embedded_model_drop_pages(deepinfant_embedded_model which);

#endif
