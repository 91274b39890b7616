/* SPDX-License-Identifier: MIT */
/* Helpers shared by darknet-run and darknet-weights: messages, files, a seeded PRNG, the weights layout. */
#ifndef DN_COMMON_H
#define DN_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* darknet.h declares a few functions with `()`: keep our -Werror build quiet about its header only. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include "darknet.h"
#pragma GCC diagnostic pop

/* Program name used in every message ("darknet-run", "darknet-weights"). */
extern const char *dn_prog;

/* "prog: message" on stderr, exit 1. */
_Noreturn void dn_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Fails (dn_die) unless path names a readable regular file; darknet itself exit(0)s on a missing file. */
void dn_check_file(const char *path, const char *what);

/* Strict integer parsing for options: dn_die on anything but a whole number in [lo, hi]. */
long dn_parse_long(const char *opt, const char *arg, long lo, long hi);

struct dn_rng {
    uint64_t state;
};

void dn_rng_seed(struct dn_rng *rng, uint64_t seed);
uint64_t dn_next(struct dn_rng *rng);
/* Uniform in [lo, hi). */
float dn_uniform(struct dn_rng *rng, float lo, float hi);
/* Approximately standard normal (Irwin-Hall sum of 4 uniforms, in [-3.46, 3.46]): bit-reproducible. */
float dn_normal(struct dn_rng *rng);

/* The default input: an image-like pattern in [0, 1] (smooth gradients plus noise) for batch items of
 * w*h*c floats (c planes of h rows of w). Deterministic for a seed. */
void dn_fill_pattern(float *dst, int w, int h, int c, int batch, uint64_t seed);

/* Visits every float array darknet's load_weights reads, in file order (parser.c, load_weights_upto),
 * with the element count it reads. Returns the total float count. fn may be NULL. */
typedef void (*dn_array_fn)(void *ctx, layer *owner, int layer_index, const char *what, float *arr,
                            size_t count);
size_t dn_weights_layout(network *net, dn_array_fn fn, void *ctx);

/* Header bytes load_weights reads for a file written by save_weights (major 0, minor 2: 64-bit seen). */
#define DN_WEIGHTS_HEADER_BYTES (3 * sizeof(int) + sizeof(size_t))

/* Works around three darknet bugs an app meets before the hook sees anything (call after
 * set_batch_network): load_weights divides by a deconvolutional layer's groups, which it never sets
 * (SIGFPE); a standalone [batchnorm] layer copies its input into l.x, which it never allocates; a
 * [local] layer states its workspace in floats where the network allocates bytes (heap overflow
 * when it needs the biggest workspace). */
void dn_fix_network(network *net);

/* Name of a layer type as its cfg section ("convolutional", "yolo", ...). */
const char *dn_layer_name(LAYER_TYPE type);

#endif /* DN_COMMON_H */
