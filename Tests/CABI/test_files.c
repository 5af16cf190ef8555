/*
 * test_files.c — files and truthful errors at the C boundary: paths that are not regular
 * files (FIFO, device, directory, symbolic link) for sx_engine_create, sx_load_exits and
 * sx_save_exits; forged exit bundles; image messages (pixel cap, JPEG warnings); and that
 * every status a call returns is listed on its function's "Errors:" line in selfxit.h
 * (parsed here at run time), with each documented status of these functions provoked.
 *
 *   test_files REPO_ROOT        (built and run by Tests/CABI/run.sh)
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <turbojpeg.h>
#include <zlib.h>

#include "selfxit.h"

static int g_failures, g_checks;
static char g_header[1 << 17];

static void check(int ok, const char *fmt, const char *a, const char *b) {
    g_checks++;
    if (!ok) g_failures++;
    printf("%s ", ok ? "ok  " : "FAIL");
    printf(fmt, a, b);
    printf("\n");
}

static const char *const g_names[] = {"OK", "INVALID_ARGUMENT", "IO", "BAD_MODEL", "UNSUPPORTED_OP", "SHAPE_MISMATCH",
                                      "WRONG_STATE", "BUSY", "OUT_OF_MEMORY", "TIMEOUT", "INTERNAL", "INVALID_DATA"};
#define NSTATUS ((int)(sizeof g_names / sizeof g_names[0]))

/* Whether `status` appears on the "Errors:" part of the comment above `sx_status fn(` in
 * selfxit.h ("Errors as sx_x" / "those of sx_x" inherit sx_x's). */
static int documented(const char *fn, sx_status status, int depth) {
    char needle[128];
    const char *proto, *open, *errors, *p;
    size_t len;
    if (status == SX_OK || status == SX_ERR_INTERNAL) return 1; /* INTERNAL: documented once for all */
    if ((int)status >= NSTATUS || depth > 3) return 0;
    snprintf(needle, sizeof needle, "sx_status %s(", fn);
    proto = strstr(g_header, needle);
    if (!proto) return 0;
    for (open = proto; open > g_header && strncmp(open, "/*", 2) != 0; open--) {}
    errors = strstr(open, "Errors");
    if (!errors || errors > proto) return 0;
    len = strlen(g_names[status]);
    for (p = errors; p < proto; p++) {
        if (strncmp(p, g_names[status], len) == 0 && (p[-1] == ' ' || p[-1] == '\n' || p[-1] == ',') &&
            !(p[len] == '_' || (p[len] >= 'A' && p[len] <= 'Z')))
            return 1;
        if ((strncmp(p, " as sx_", 7) == 0 || strncmp(p, " of sx_", 7) == 0)) {
            char other[64];
            size_t n = 0;
            const char *q = p + 4;
            while (n + 1 < sizeof other && (q[n] == '_' || (q[n] >= 'a' && q[n] <= 'z'))) {
                other[n] = q[n];
                n++;
            }
            other[n] = 0;
            if (documented(other, status, depth + 1)) return 1;
        }
    }
    return 0;
}

/* Runs a call, checks its status, that the status is documented for `fn`, and (if `word`)
 * that sx_last_error() contains `word`. */
static sx_status expect(const char *fn, sx_status got, sx_status want, const char *word, const char *what) {
    char label[512];
    const char *message = got == SX_OK ? "" : sx_last_error();
    snprintf(label, sizeof label, "%s: %s (want %s)", what, g_names[(int)got < NSTATUS ? got : 0], g_names[want]);
    check(got == want, "%s%s", label, got == want ? "" : "");
    if (got != SX_OK) printf("       message: %s\n", message);
    check(documented(fn, got, 0), "  … %s documents %s", fn, (int)got < NSTATUS ? g_names[got] : "?");
    if (word && got != SX_OK) check(strstr(message, word) != NULL, "  … message names '%s'%s", word, "");
    return got;
}

static int read_file(const char *path, unsigned char **bytes, size_t *size) {
    FILE *f = fopen(path, "rb");
    long n;
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *bytes = malloc((size_t)n + 1);
    *size = fread(*bytes, 1, (size_t)n, f);
    fclose(f);
    return *size == (size_t)n ? 0 : -1;
}

static void write_file(const char *path, const void *bytes, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(bytes, 1, size, f) != size) {
        perror(path);
        exit(2);
    }
    fclose(f);
}

static uint64_t fnv1a64(const unsigned char *p, size_t n) {
    uint64_t h = 0xCBF29CE484222325ull;
    size_t i;
    for (i = 0; i < n; i++) h = (h ^ p[i]) * 0x00000100000001B3ull;
    return h;
}

static void on_alarm(int sig) {
    (void)sig;
    static const char text[] = "FAIL a call blocked for 20 s (a FIFO opened for reading?)\n";
    if (write(1, text, sizeof text - 1) < 0) {}
    _exit(1);
}

static void ignore_result(const sx_result *r, void *u) {
    (void)r;
    (void)u;
}

static void put32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

int main(int argc, char **argv) {
    const char *root = argc > 1 ? argv[1] : ".";
    char model[1024], path[1024], dir[] = "/tmp/sx_files_XXXXXX", fifo[1100], link_path[1100], target[1100],
        bundle[1100], forged[1100];
    unsigned char *bytes = NULL;
    size_t size = 0, i;
    sx_engine *e = NULL, *bare = NULL;
    sx_engine_options eo;
    sx_update_options uo;
    float *input, out[784];
    struct stat st;
    FILE *hf;

    signal(SIGALRM, on_alarm);
    snprintf(path, sizeof path, "%s/include/selfxit.h", root);
    hf = fopen(path, "rb");
    if (!hf) {
        perror(path);
        return 2;
    }
    g_header[fread(g_header, 1, sizeof g_header - 1, hf)] = 0;
    fclose(hf);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(model, sizeof model, "%s/Tests/Fixtures/models/resnet18_w4.onnx", root);
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    snprintf(link_path, sizeof link_path, "%s/link.sxx", dir);
    snprintf(target, sizeof target, "%s/target.txt", dir);
    snprintf(bundle, sizeof bundle, "%s/exits.sxx", dir);
    snprintf(forged, sizeof forged, "%s/forged.sxx", dir);
    if (mkfifo(fifo, 0600) != 0) {
        perror("mkfifo");
        return 2;
    }

    printf("== status names\n");
    check(strcmp(sx_status_string(SX_ERR_INVALID_DATA), "invalid data") == 0, "sx_status_string(SX_ERR_INVALID_DATA) = '%s'%s",
          sx_status_string(SX_ERR_INVALID_DATA), "");
    check(strcmp(sx_status_string(SX_ERR_INTERNAL), "internal error") == 0 &&
              strcmp(sx_status_string(SX_ERR_CANCELLED), "cancelled") == 0 &&
              strcmp(sx_status_string((sx_status)13), "unknown status") == 0,
          "INTERNAL keeps its name, 12 is '%s', 13 is '%s'", sx_status_string((sx_status)12),
          sx_status_string((sx_status)13));

    printf("== sx_engine_create on paths that are not regular files (each must return at once)\n");
    alarm(20);
    expect("sx_engine_create", sx_engine_create(fifo, NULL, &e), SX_ERR_IO, "FIFO", "sx_engine_create(FIFO)");
    expect("sx_engine_create", sx_engine_create("/dev/null", NULL, &e), SX_ERR_IO, "character device", "sx_engine_create(/dev/null)");
    expect("sx_engine_create", sx_engine_create("/dev/zero", NULL, &e), SX_ERR_IO, "character device", "sx_engine_create(/dev/zero)");
    expect("sx_engine_create", sx_engine_create(dir, NULL, &e), SX_ERR_IO, "directory", "sx_engine_create(a directory)");
    alarm(0);
    /* Every other documented status of sx_engine_create (OUT_OF_MEMORY: no small provocation). */
    expect("sx_engine_create", sx_engine_create(NULL, NULL, &e), SX_ERR_INVALID_ARGUMENT, "NULL", "sx_engine_create(NULL path)");
    snprintf(path, sizeof path, "%s/missing.onnx", dir);
    expect("sx_engine_create", sx_engine_create(path, NULL, &e), SX_ERR_IO, "missing.onnx", "sx_engine_create(missing file)");
    write_file(path, "not a model at all", 18);
    expect("sx_engine_create", sx_engine_create(path, NULL, &e), SX_ERR_BAD_MODEL, NULL, "sx_engine_create(garbage file)");
    snprintf(path, sizeof path, "%s/Tests/Fixtures/models/resnet18_w4_unsupported_op.onnx", root);
    expect("sx_engine_create", sx_engine_create(path, NULL, &e), SX_ERR_UNSUPPORTED_OP, NULL, "sx_engine_create(unsupported operator)");
    {
        int64_t shape[3] = {3, 28, 28}; /* the model's first conv takes 1 channel */
        sx_engine_options_init(&eo);
        eo.input_shape = shape;
        eo.input_rank = 3;
        expect("sx_engine_create", sx_engine_create(model, &eo, &e), SX_ERR_SHAPE_MISMATCH, NULL, "sx_engine_create(input_shape [3,28,28])");
    }

    sx_engine_options_init(&eo);
    eo.threads = 2;
    if (expect("sx_engine_create", sx_engine_create(model, &eo, &e), SX_OK, NULL, "sx_engine_create(resnet18_w4)") != SX_OK) return 1;
    expect("sx_engine_create", sx_engine_create(model, &eo, &bare), SX_OK, NULL, "sx_engine_create(resnet18_w4, a second engine)");

    printf("== exits: a quick build on structured synthetic traffic\n");
    input = malloc(sizeof(float) * 784 * 100);
    check(sx_set_exits_enabled(e, 0) == SX_OK, "sx_set_exits_enabled(0)%s%s", "", "");
    for (i = 0; i < 4; i++) {
        size_t s, p;
        for (s = 0; s < 100; s++)
            for (p = 0; p < 784; p++) {
                size_t k = (i * 100 + s) % 10, y = p / 28, x = p % 28;
                input[s * 784 + p] = (float)(0.5 + 0.5 * sin((double)(k + 1) * (double)(x + (k % 3) * y) / 9.0) +
                                             0.05 * sin((double)(s * 7 + p)));
            }
        check(sx_submit(e, input, 784 * 100, 100, ignore_result, NULL) == SX_OK, "sx_submit (collecting)%s%s", "", "");
    }
    check(sx_set_exits_enabled(e, 1) == SX_OK, "sx_set_exits_enabled(1)%s%s", "", "");
    sx_update_options_init(&uo);
    uo.search_budget = 1;
    uo.epochs = 3;
    uo.tolerance = 0.05;
    expect("sx_update_exits", sx_update_exits(e, &uo), SX_OK, NULL, "sx_update_exits(400 samples, budget 1, 3 epochs)");

    printf("== sx_save_exits: only regular files are written\n");
    expect("sx_save_exits", sx_save_exits(bare, bundle), SX_ERR_WRONG_STATE, "no exits", "sx_save_exits(no exits built)");
    expect("sx_save_exits", sx_save_exits(e, NULL), SX_ERR_INVALID_ARGUMENT, "NULL", "sx_save_exits(NULL path)");
    write_file(target, "keep me", 7);
    if (symlink(target, link_path) != 0) perror("symlink");
    expect("sx_save_exits", sx_save_exits(e, link_path), SX_ERR_IO, "symbolic link", "sx_save_exits(a symbolic link)");
    {
        char where[1100] = {0};
        ssize_t n = readlink(link_path, where, sizeof where - 1);
        unsigned char *kept = NULL;
        size_t kept_size = 0;
        check(n > 0 && strcmp(where, target) == 0, "  … the link still points to %s%s", target, "");
        check(read_file(target, &kept, &kept_size) == 0 && kept_size == 7 && memcmp(kept, "keep me", 7) == 0,
              "  … its target is unchanged%s%s", "", "");
        free(kept);
    }
    alarm(20);
    expect("sx_save_exits", sx_save_exits(e, fifo), SX_ERR_IO, "FIFO", "sx_save_exits(FIFO)");
    check(lstat(fifo, &st) == 0 && S_ISFIFO(st.st_mode), "  … the FIFO is still a FIFO%s%s", "", "");
    expect("sx_save_exits", sx_save_exits(e, "/dev/null"), SX_ERR_IO, "character device", "sx_save_exits(/dev/null)");
    check(stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode), "  … /dev/null is still a device%s%s", "", "");
    expect("sx_save_exits", sx_save_exits(e, dir), SX_ERR_IO, "directory", "sx_save_exits(a directory)");
    alarm(0);
    snprintf(path, sizeof path, "%s/no/such/dir.sxx", dir);
    expect("sx_save_exits", sx_save_exits(e, path), SX_ERR_IO, "no/such/dir.sxx", "sx_save_exits(missing directory)");
    write_file(bundle, "old contents", 12);
    expect("sx_save_exits", sx_save_exits(e, bundle), SX_OK, NULL, "sx_save_exits(over a regular file)");

    printf("== sx_load_exits\n");
    alarm(20);
    expect("sx_load_exits", sx_load_exits(e, fifo), SX_ERR_IO, "FIFO", "sx_load_exits(FIFO)");
    expect("sx_load_exits", sx_load_exits(e, "/dev/zero"), SX_ERR_IO, "character device", "sx_load_exits(/dev/zero)");
    expect("sx_load_exits", sx_load_exits(e, dir), SX_ERR_IO, "directory", "sx_load_exits(a directory)");
    alarm(0);
    expect("sx_load_exits", sx_load_exits(e, NULL), SX_ERR_INVALID_ARGUMENT, "NULL", "sx_load_exits(NULL path)");
    snprintf(path, sizeof path, "%s/missing.sxx", dir);
    expect("sx_load_exits", sx_load_exits(e, path), SX_ERR_IO, "missing.sxx", "sx_load_exits(missing file)");
    expect("sx_load_exits", sx_load_exits(bare, bundle), SX_OK, NULL, "sx_load_exits(the saved bundle)");
    expect("sx_load_exits", sx_load_exits(bare, model), SX_ERR_INVALID_DATA, "not a SelfXit exit bundle", "sx_load_exits(an ONNX file)");
    if (read_file(bundle, &bytes, &size) == 0 && size > 36) {
        /* A forger edits a field and recomputes the checksum: classes 10 → 99. */
        char *json = (char *)bytes + 28, *at;
        size_t json_size = size - 36;
        uint64_t sum;
        sx_info before, after;
        before.struct_size = after.struct_size = sizeof(sx_info);
        check(sx_engine_info(bare, &before) == SX_OK, "sx_engine_info before%s%s", "", "");
        bytes[size - 1] = 0; /* checksum bytes: strstr below stays inside the JSON */
        at = strstr(json, "\"classes\":10");
        check(at != NULL, "  the bundle's JSON has \"classes\":10%s%s", "", "");
        if (at) {
            memcpy(at, "\"classes\":99", 12);
            sum = fnv1a64((unsigned char *)json, json_size);
            for (i = 0; i < 8; i++) bytes[size - 8 + i] = (unsigned char)(sum >> (8 * i));
            write_file(forged, bytes, size);
            expect("sx_load_exits", sx_load_exits(bare, forged), SX_ERR_INVALID_DATA, "head.classes",
                   "sx_load_exits(classes edited, checksum recomputed)");
            memcpy(at, "\"classes\":10", 12);
            bytes[size - 1] ^= 0xFF;
            write_file(forged, bytes, size);
            expect("sx_load_exits", sx_load_exits(bare, forged), SX_ERR_INVALID_DATA, "checksum", "sx_load_exits(damaged checksum)");
        }
        check(sx_engine_info(bare, &after) == SX_OK, "sx_engine_info after%s%s", "", "");
        check(after.num_trained_exits == before.num_trained_exits && after.num_active_exits == before.num_active_exits,
              "  … refused bundles leave the exits in service%s%s", "", "");
    }
    free(bytes);

    printf("== sx_decode_image\n");
    {
        unsigned char gray[28 * 28], *jpeg = NULL, png[64];
        unsigned long jpeg_size = 0;
        tjhandle tj = tjInitCompress();
        size_t p;
        for (p = 0; p < sizeof gray; p++) gray[p] = (unsigned char)((p % 28) * 9);
        if (tjCompress2(tj, gray, 28, 0, 28, TJPF_GRAY, &jpeg, &jpeg_size, TJSAMP_GRAY, 95, 0) != 0) {
            printf("FAIL tjCompress2: %s\n", tjGetErrorStr2(tj));
            return 1;
        }
        expect("sx_decode_image", sx_decode_image(e, jpeg, jpeg_size, NULL, out, 784), SX_OK, NULL, "sx_decode_image(gray JPEG)");
        /* Without its end-of-image marker libjpeg-turbo decodes the whole image and warns
         * ("premature end of data"): accepted. */
        check(jpeg[jpeg_size - 2] == 0xFF && jpeg[jpeg_size - 1] == 0xD9, "  the JPEG ends with FF D9%s%s", "", "");
        memset(out, 0, sizeof out);
        if (expect("sx_decode_image", sx_decode_image(e, jpeg, jpeg_size - 2, NULL, out, 784), SX_OK, NULL,
                   "sx_decode_image(JPEG without its EOI marker: a libjpeg-turbo warning)") == SX_OK) {
            double worst = 0;
            for (p = 0; p < 784; p++) worst = fmax(worst, fabs(out[p] - gray[p] / 255.0));
            check(worst < 0.05, "  … decoded as the image%s%s", "", "");
        }
        /* A header claiming 60000×60000 (SOF0 height/width patched): refused before decoding. */
        for (p = 2; p + 8 < jpeg_size; p++)
            if (jpeg[p] == 0xFF && jpeg[p + 1] == 0xC0) {
                jpeg[p + 5] = 0xEA, jpeg[p + 6] = 0x60, jpeg[p + 7] = 0xEA, jpeg[p + 8] = 0x60;
                break;
            }
        expect("sx_decode_image", sx_decode_image(e, jpeg, jpeg_size, NULL, out, 784), SX_ERR_INVALID_DATA, "limit",
               "sx_decode_image(JPEG claiming 60000x60000)");
        check(strstr(sx_last_error(), "No error") == NULL, "  … and does not say 'No error'%s%s", "", "");
        tjFree(jpeg);
        tjDestroy(tj);

        /* PNG: signature, IHDR 100000×100000 gray 8-bit (valid CRC), a small IDAT. */
        memcpy(png, "\x89PNG\r\n\x1a\n", 8);
        put32(png + 8, 13);
        memcpy(png + 12, "IHDR", 4);
        put32(png + 16, 100000);
        put32(png + 20, 100000);
        png[24] = 8, png[25] = 0, png[26] = 0, png[27] = 0, png[28] = 0;
        put32(png + 29, (uint32_t)crc32(crc32(0, NULL, 0), png + 12, 17));
        put32(png + 33, 2);
        memcpy(png + 37, "IDAT\x78\x9c", 6);
        put32(png + 43, (uint32_t)crc32(crc32(0, NULL, 0), png + 37, 6));
        expect("sx_decode_image", sx_decode_image(e, png, 47, NULL, out, 784), SX_ERR_INVALID_DATA, "100000",
               "sx_decode_image(PNG claiming 100000x100000)");
        check(strstr(sx_last_error(), "limit") != NULL, "  … the message says it is over the limit%s%s", "", "");
        expect("sx_decode_image", sx_decode_image(e, "GIF89a garbage", 14, NULL, out, 784), SX_ERR_INVALID_DATA,
               "neither JPEG nor PNG", "sx_decode_image(a GIF)");
        expect("sx_decode_image", sx_decode_image(e, png, 47, NULL, NULL, 784), SX_ERR_INVALID_ARGUMENT, "out",
               "sx_decode_image(NULL out)");
        expect("sx_decode_image", sx_decode_image(e, png, 47, NULL, out, 783), SX_ERR_SHAPE_MISMATCH, NULL,
               "sx_decode_image(out_len 783)");
    }

    check(sx_engine_destroy(e) == SX_OK, "sx_engine_destroy%s%s", "", "");
    check(sx_engine_destroy(bare) == SX_OK, "sx_engine_destroy%s%s", "", "");
    free(input);
    unlink(fifo);
    unlink(link_path);
    unlink(target);
    unlink(bundle);
    unlink(forged);
    snprintf(path, sizeof path, "%s/missing.onnx", dir);
    unlink(path);
    rmdir(dir);
    printf("test_files: %d checks, %d failed\n", g_checks, g_failures);
    return g_failures ? 1 : 0;
}
