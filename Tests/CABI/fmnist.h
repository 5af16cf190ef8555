/* The first `n` Fashion-MNIST test images (Debian's dataset-fashion-mnist, or
 * $FASHION_MNIST_DIR), normalised as the model was trained: (p/255 − 0.2860) / 0.3530, n×784
 * floats the caller frees; NULL (and a line on stderr naming `program`) when missing or short.
 * For the C test programs that need only images; link with -lz. */
#ifndef SELFXIT_TEST_FMNIST_H
#define SELFXIT_TEST_FMNIST_H

#include <stdio.h>
#include <stdlib.h>
#include <zlib.h>

static float *load_fmnist_images(size_t n, const char *program) {
    const char *dir = getenv("FASHION_MNIST_DIR");
    char path[4096];
    unsigned char head[16];
    unsigned char *u8;
    float *x;
    size_t i, total = n * 784;
    gzFile f;
    if (dir == NULL || dir[0] == '\0') dir = "/usr/share/datasets/fashion-mnist";
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte.gz", dir);
    f = gzopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "%s: cannot open %s\n", program, path);
        return NULL;
    }
    u8 = malloc(total);
    x = malloc(total * sizeof(float));
    /* idx3 of unsigned bytes: magic 00 00 08 03. */
    if (u8 == NULL || x == NULL || gzread(f, head, 16) != 16 || head[2] != 0x08 || head[3] != 3 ||
        gzread(f, u8, (unsigned)total) != (int)total) {
        fprintf(stderr, "%s: cannot read %zu images from %s\n", program, n, path);
        gzclose(f);
        free(u8);
        free(x);
        return NULL;
    }
    gzclose(f);
    for (i = 0; i < total; i++) x[i] = ((float)u8[i] / 255.0f - 0.2860f) / 0.3530f;
    free(u8);
    return x;
}

#endif
