#ifndef DEEPINFANT_ALSA_SHIM_H
#define DEEPINFANT_ALSA_SHIM_H

/// Replaces ALSA's default error handler (which prints to stderr) with one that drops the messages:
/// the Swift side reports errors itself, with the device name and snd_strerror().
/// `snd_lib_error_set_handler` takes a C variadic function, which Swift cannot define.
void deepinfant_alsa_silence_errors(void);

/// Restores ALSA's default stderr error handler.
void deepinfant_alsa_default_errors(void);

/// Drops ALSA's cached global configuration so the next open re-reads ALSA_CONFIG_PATH.
void deepinfant_alsa_reload_config(void);

#endif
