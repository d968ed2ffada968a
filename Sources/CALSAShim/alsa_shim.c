#include "alsa_shim.h"
#include <alsa/asoundlib.h>
#include <stdarg.h>

static void quiet_handler(const char *file, int line, const char *function, int err, const char *fmt, ...) {
    (void)file; (void)line; (void)function; (void)err; (void)fmt;
}

void deepinfant_alsa_silence_errors(void) { snd_lib_error_set_handler(quiet_handler); }
void deepinfant_alsa_default_errors(void) { snd_lib_error_set_handler(NULL); }
void deepinfant_alsa_reload_config(void) { snd_config_update_free_global(); }
