/* The shipped model files, linked into the executable as read-only data.
 *
 * The files live in Sources/Inference/Resources/ (where training/ writes them); the assembler finds them
 * through the target's header search path. Neither the compiler's dependency file nor SwiftPM sees an
 * .incbin, so after replacing a model file touch this file (the training scripts that write a model do)
 * or the build keeps the old bytes: the self-test in each file still guards a stale one. */

#if defined(__APPLE__)
#define SYM(name) _##name
#define RODATA .section __TEXT,__const
#else
#define SYM(name) name
#define RODATA .section .rodata.deepinfant_models,"a",@progbits
#endif

#define MODEL(name, file)            \
    .globl SYM(name##_start);        \
    .globl SYM(name##_end);          \
    .balign 64;                      \
SYM(name##_start):                   \
    .incbin file;                    \
SYM(name##_end):                     \
    .byte 0

    RODATA
MODEL(deepinfant_reason, "deepinfant-reason.safetensors")
MODEL(deepinfant_cry_crnn, "deepinfant-cry.safetensors")
MODEL(deepinfant_yamnet, "yamnet.safetensors")
MODEL(deepinfant_cry_head, "deepinfant-cry-head.safetensors")

#if !defined(__APPLE__)
    .section .note.GNU-stack,"",@progbits
#endif
