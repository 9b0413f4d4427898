/*
 * Every entry point of reid.h against bad input: NULL handles, NULL buffers, zero or too
 * small capacities, wrong dimensions, handles of the wrong type, corrupt model, gallery and
 * data files, truncated images. Each must return its documented status with a message and
 * leave outputs and files untouched; the good paths are checked for the right results.
 * Run by tests/ffi/installed_sdk.rs, natively and under valgrind.
 *
 *   abi_errors WEIGHTS.pth.tar IMAGES_DIR WORK_DIR
 */
#include "reid.h"
#include "common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;
static int checks = 0;

static void expect(int line, const char *what, reid_status got, reid_status want,
                   const char *needle) {
    char message[1024];
    size_t len = 0;
    checks++;
    if (got != want) {
        reid_last_error_message(message, sizeof message, &len);
        fprintf(stderr, "line %d: %s: got %s, want %s (%s)\n", line, what,
                reid_status_str(got), reid_status_str(want), message);
        failures++;
        return;
    }
    if (want == REID_OK) return;
    if (reid_last_error_message(message, sizeof message, &len) != REID_OK || len == 0 ||
        strlen(message) != len) {
        fprintf(stderr, "line %d: %s: no error message\n", line, what);
        failures++;
    } else if (needle && !strstr(message, needle)) {
        fprintf(stderr, "line %d: %s: message \"%s\" lacks \"%s\"\n", line, what, message,
                needle);
        failures++;
    }
}

#define EXPECT(call, want) expect(__LINE__, #call, (call), (want), NULL)
#define EXPECT_MSG(call, want, needle) expect(__LINE__, #call, (call), (want), (needle))
#define CHECK(cond)                                                         \
    do {                                                                    \
        checks++;                                                           \
        if (!(cond)) {                                                      \
            fprintf(stderr, "line %d: failed: %s\n", __LINE__, #cond);      \
            failures++;                                                     \
        }                                                                   \
    } while (0)

static void write_file(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    fclose(f);
}

static int same_file(const char *path, const unsigned char *data, size_t size) {
    size_t n = 0;
    unsigned char *now = read_file(path, &n);
    int same = now && n == size && memcmp(now, data, size) == 0;
    free(now);
    return same;
}

static float norm(const float *v, size_t n) {
    double s = 0;
    size_t i;
    for (i = 0; i < n; i++) s += (double)v[i] * v[i];
    return (float)sqrt(s);
}

static float max_abs_diff(const float *a, const float *b, size_t n) {
    float worst = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (d > worst) worst = d;
    }
    return worst;
}

/* A deterministic test picture: gradients and a block, in RGB. */
static unsigned char *make_rgb(size_t width, size_t height) {
    unsigned char *p = malloc(width * height * 3);
    size_t x, y;
    for (y = 0; y < height; y++)
        for (x = 0; x < width; x++) {
            unsigned char *px = p + (y * width + x) * 3;
            px[0] = (unsigned char)(x * 255 / width);
            px[1] = (unsigned char)(y * 255 / height);
            px[2] = (unsigned char)((x / 8 + y / 8) % 2 ? 200 : 30);
        }
    return p;
}

int main(int argc, char **argv) {
    char path[4096], model[4096], gallery_path[4096], message[256];
    const char *weights, *images_dir, *work;
    size_t len = 0, dim, h = 0, w = 0, i;
    reid_extractor_options *options = NULL;
    reid_extractor *ex = NULL;
    reid_gallery *g = NULL, *g2 = NULL;
    float *out, *out2;
    const float mean[3] = {0.485f, 0.456f, 0.406f}, std_ok[3] = {0.229f, 0.224f, 0.225f},
                std_bad[3] = {0.229f, 0.0f, 0.225f};

    if (argc != 4) {
        fprintf(stderr, "usage: %s WEIGHTS IMAGES_DIR WORK_DIR\n", argv[0]);
        return 2;
    }
    weights = argv[1];
    images_dir = argv[2];
    work = argv[3];

    /* ---- version and error reporting ---- */
    CHECK(strcmp(reid_version(), REID_VERSION_STRING) == 0);
    snprintf(message, sizeof message, "%d.%d.%d", REID_VERSION_MAJOR, REID_VERSION_MINOR,
             REID_VERSION_PATCH);
    CHECK(strcmp(reid_version(), message) == 0);
    CHECK(strcmp(reid_status_str(REID_OK), "REID_OK") == 0);
    CHECK(strcmp(reid_status_str(REID_BAD_IMAGE), "REID_BAD_IMAGE") == 0);
    CHECK(strcmp(reid_status_str(REID_INTERNAL_ERROR), "REID_INTERNAL_ERROR") == 0);
    CHECK(strcmp(reid_status_str(9999), "REID_UNKNOWN_STATUS") == 0);
    CHECK(strcmp(reid_status_str(-1), "REID_UNKNOWN_STATUS") == 0);
    EXPECT(reid_gallery_new(0, REID_METRIC_COSINE, &g), REID_INVALID_ARGUMENT);
    EXPECT(reid_gallery_new(SIZE_MAX, REID_METRIC_COSINE, &g), REID_INVALID_ARGUMENT);
    /* The message survives being read, and a too-small buffer is refused with the size. */
    EXPECT(reid_last_error_message(NULL, 0, &len), REID_BUFFER_TOO_SMALL);
    CHECK(len > 0);
    EXPECT(reid_last_error_message(message, len, NULL), REID_BUFFER_TOO_SMALL);
    EXPECT(reid_last_error_message(NULL, 10, NULL), REID_INVALID_ARGUMENT);
    memset(message, 'x', sizeof message);
    EXPECT(reid_last_error_message(message, len + 1, NULL), REID_OK);
    CHECK(strlen(message) == len && strstr(message, "dimension"));

    /* Logging: a callback or none, at a known level. */
    EXPECT(reid_logging_set_callback(NULL, NULL, 99), REID_INVALID_ARGUMENT);
    EXPECT(reid_logging_set_callback(NULL, NULL, REID_LOG_WARNING), REID_OK);

    /* ---- export ---- */
    snprintf(model, sizeof model, "%s/model.onnx", work);
    EXPECT_MSG(reid_export_onnx("osnet_x0_25", NULL, model, 0, 0, 0), REID_INVALID_ARGUMENT,
               "NULL");
    EXPECT(reid_export_onnx("osnet_x0_25", weights, NULL, 0, 0, 0), REID_INVALID_ARGUMENT);
    EXPECT_MSG(reid_export_onnx("no_such_net", weights, model, 0, 0, 0),
               REID_UNKNOWN_ARCHITECTURE, "no_such_net");
    EXPECT(reid_export_onnx("osnet_x0_25", weights, model, 64, 0, 0), REID_INVALID_ARGUMENT);
    EXPECT(reid_export_onnx("osnet_x0_25", weights, model, 64, 32, 0x80), REID_INVALID_ARGUMENT);
    snprintf(path, sizeof path, "%s/missing.pth", work);
    EXPECT_MSG(reid_export_onnx("osnet_x0_25", path, model, 64, 32, 0), REID_IO_ERROR,
               "missing.pth");
    snprintf(path, sizeof path, "%s/corrupt.pth", work);
    write_file(path, "this is not a checkpoint", 24);
    EXPECT(reid_export_onnx("osnet_x0_25", path, model, 64, 32, 0), REID_MODEL_ERROR);
    EXPECT_MSG(reid_export_onnx("osnet_x1_0", weights, model, 64, 32, 0), REID_MODEL_ERROR,
               "osnet_x1_0");
    EXPECT(reid_export_onnx(NULL, weights, model, 64, 32, 0), REID_INVALID_ARGUMENT);
    snprintf(path, sizeof path, "%s/no/such/dir/model.onnx", work);
    EXPECT(reid_export_onnx("osnet_x0_25", weights, path, 64, 32, 0), REID_IO_ERROR);
    EXPECT(reid_export_onnx("osnet_x0_25", weights, model, 64, 32, 0), REID_OK);
    {
        /* reid_export_onnx_ex: a graph taking raw uint8 BGR pixels in NHWC (checked below:
           the same embeddings), and its bad options */
        reid_export_options eo = reid_export_options_default();
        CHECK(eo.precision == REID_PRECISION_F32 && eo.input == REID_GRAPH_INPUT_FLOAT &&
              eo.layout == REID_LAYOUT_NCHW && eo.calibration == NULL &&
              eo.calibration_images == 256 && eo.max_map_drop == 1.0);
        snprintf(path, sizeof path, "%s/uint8.onnx", work);
        eo.height = 64;
        eo.width = 32;
        eo.input = REID_GRAPH_INPUT_UINT8_BGR;
        eo.layout = REID_LAYOUT_NHWC;
        EXPECT(reid_export_onnx_ex("osnet_x0_25", weights, path, &eo), REID_OK);
        eo.layout = 7;
        EXPECT_MSG(reid_export_onnx_ex("osnet_x0_25", weights, path, &eo), REID_INVALID_ARGUMENT,
                   "layout");
        eo = reid_export_options_default();
        eo.layout = REID_LAYOUT_NHWC;
        EXPECT_MSG(reid_export_onnx_ex("osnet_x0_25", weights, path, &eo), REID_INVALID_ARGUMENT,
                   "uint8");
        eo = reid_export_options_default();
        eo.input = 5;
        EXPECT(reid_export_onnx_ex("osnet_x0_25", weights, path, &eo), REID_INVALID_ARGUMENT);
        eo = reid_export_options_default();
        eo.precision = REID_PRECISION_INT8;
        EXPECT_MSG(reid_export_onnx_ex("osnet_x0_25", weights, path, &eo), REID_INVALID_ARGUMENT,
                   "calibration");
        eo.calibration = work;
        eo.calibration_method = "entropy";
        EXPECT_MSG(reid_export_onnx_ex("osnet_x0_25", weights, path, &eo), REID_INVALID_ARGUMENT,
                   "entropy");
        eo.calibration_method = NULL;
        eo.max_map_drop = -1.0;
        EXPECT(reid_export_onnx_ex("osnet_x0_25", weights, path, &eo), REID_INVALID_ARGUMENT);
        eo = reid_export_options_default();
        eo.calibration = work;
        EXPECT(reid_export_onnx_ex("osnet_x0_25", weights, path, &eo), REID_INVALID_ARGUMENT);
        eo = reid_export_options_default();
        eo.precision = 9;
        EXPECT(reid_export_onnx_ex("osnet_x0_25", weights, path, &eo), REID_INVALID_ARGUMENT);
        /* FP16 needs a dataset to check on; float16 ends are for FP16 alone */
        eo = reid_export_options_default();
        eo.precision = REID_PRECISION_FP16;
        EXPECT_MSG(reid_export_onnx_ex("osnet_x0_25", weights, path, &eo), REID_INVALID_ARGUMENT,
                   "dataset");
        eo = reid_export_options_default();
        eo.flags = REID_EXPORT_FP16_IO;
        EXPECT_MSG(reid_export_onnx_ex("osnet_x0_25", weights, path, &eo), REID_INVALID_ARGUMENT,
                   "fp16");
        eo.flags = 4;
        EXPECT_MSG(reid_export_onnx_ex("osnet_x0_25", weights, path, &eo), REID_INVALID_ARGUMENT,
                   "flags");
        EXPECT(reid_export_onnx_ex("osnet_x0_25", weights, NULL, NULL), REID_INVALID_ARGUMENT);
        eo = reid_export_options_default();
        eo.height = 64;
        eo.width = 32;
        eo.input = REID_GRAPH_INPUT_UINT8_BGR;
        eo.layout = REID_LAYOUT_NHWC;
        EXPECT(reid_export_onnx_ex("osnet_x0_25", weights, path, &eo), REID_OK);
    }

    /* ---- extractor options ---- */
    EXPECT(reid_extractor_options_new(NULL), REID_INVALID_ARGUMENT);
    EXPECT(reid_extractor_options_new(&options), REID_OK);
    EXPECT(reid_extractor_options_set_engine(NULL, REID_ENGINE_BURN), REID_INVALID_ARGUMENT);
    EXPECT(reid_extractor_options_set_engine(options, 7), REID_INVALID_ARGUMENT);
    EXPECT(reid_extractor_options_set_engine(options, REID_ENGINE_OPENVINO), REID_OK);
    EXPECT_MSG(reid_extractor_options_set_openvino(options, "CPU", "f64", NULL, NULL),
               REID_INVALID_ARGUMENT, "precision");
    EXPECT_MSG(reid_extractor_options_set_openvino(options, "", NULL, NULL, NULL),
               REID_INVALID_ARGUMENT, "device");
    EXPECT_MSG(reid_extractor_options_set_openvino(options, NULL, NULL, "fastest", NULL),
               REID_INVALID_ARGUMENT, "hint");
    EXPECT(reid_extractor_options_set_openvino(options, "CPU", "f32", "latency", NULL), REID_OK);
    EXPECT(reid_extractor_options_set_engine(options, REID_ENGINE_ONNXRUNTIME), REID_OK);
    EXPECT_MSG(reid_extractor_options_set_execution_providers(options, "cuda,rocm", NULL, false),
               REID_INVALID_ARGUMENT, "rocm");
    EXPECT_MSG(reid_extractor_options_set_execution_providers(options, "cuda:x", NULL, true),
               REID_INVALID_ARGUMENT, "cuda:x");
    EXPECT_MSG(reid_extractor_options_set_execution_providers(options, "tensorrt", "", false),
               REID_INVALID_ARGUMENT, "cache");
    EXPECT(reid_extractor_options_set_execution_providers(options, "tensorrt:0,cuda", "/tmp/trt",
                                                          false),
           REID_OK);
    EXPECT(reid_extractor_options_set_execution_providers(options, NULL, NULL, false), REID_OK);
    EXPECT(reid_extractor_options_set_ort_library(options, NULL), REID_INVALID_ARGUMENT);
    EXPECT(reid_extractor_options_set_ort_library(options, ""), REID_INVALID_ARGUMENT);
    EXPECT(reid_extractor_options_set_threads(options, 1, 0), REID_INVALID_ARGUMENT);
    EXPECT(reid_extractor_options_set_max_batch(options, 0), REID_INVALID_ARGUMENT);
    EXPECT(reid_extractor_options_set_input_size(options, 0, 32), REID_INVALID_ARGUMENT);
    EXPECT(reid_extractor_options_set_channel_order(options, 2), REID_INVALID_ARGUMENT);
    EXPECT(reid_extractor_options_set_normalization(options, 1.0f / 255, NULL, std_ok),
           REID_INVALID_ARGUMENT);
    EXPECT(reid_extractor_options_set_normalization(options, 1.0f / 255, mean, std_bad),
           REID_INVALID_ARGUMENT);
    EXPECT(reid_extractor_options_set_normalization(options, NAN, mean, std_ok),
           REID_INVALID_ARGUMENT);
    EXPECT(reid_extractor_options_set_normalize(NULL, 1), REID_INVALID_ARGUMENT);
    EXPECT_MSG(reid_extractor_options_set_device(options, "tpu:3"), REID_DEVICE_ERROR, "tpu");
    EXPECT(reid_extractor_options_set_device(options, NULL), REID_INVALID_ARGUMENT);
    EXPECT(reid_extractor_options_set_architecture(options, "resnet9000"),
           REID_UNKNOWN_ARCHITECTURE);
    /* Good values (the failed calls above changed nothing). */
    EXPECT(reid_extractor_options_set_threads(options, 1, 2), REID_OK);
    EXPECT(reid_extractor_options_set_max_batch(options, 3), REID_OK);
    EXPECT(reid_extractor_options_set_device(options, "flex"), REID_OK);
    EXPECT(reid_extractor_options_set_normalization(options, 1.0f / 255, mean, std_ok), REID_OK);

    /* ---- extractor ---- */
    EXPECT(reid_extractor_new(NULL, options, &ex), REID_INVALID_ARGUMENT);
    EXPECT(reid_extractor_new(model, options, NULL), REID_INVALID_ARGUMENT);
    snprintf(path, sizeof path, "%s/missing.onnx", work);
    EXPECT_MSG(reid_extractor_new(path, options, &ex), REID_IO_ERROR, "missing.onnx");
    snprintf(path, sizeof path, "%s/corrupt.onnx", work);
    write_file(path, "\x08\x07garbage, not protobuf \xff\xff\xff", 27);
    EXPECT(reid_extractor_new(path, options, &ex), REID_MODEL_ERROR);
    {
        /* A truncated model: the first half of a real one. */
        size_t size = 0;
        unsigned char *bytes = read_file(model, &size);
        snprintf(path, sizeof path, "%s/truncated.onnx", work);
        write_file(path, bytes, size / 2);
        free(bytes);
        EXPECT(reid_extractor_new(path, options, &ex), REID_MODEL_ERROR);
    }
    EXPECT_MSG(reid_extractor_new(weights, options, &ex), REID_INVALID_ARGUMENT, ".onnx");
    CHECK(ex == NULL);
    EXPECT(reid_extractor_new(model, options, &ex), REID_OK);
    CHECK(ex != NULL);
    reid_extractor_options_free(options);
    reid_extractor_options_free(NULL);

    dim = reid_extractor_dim(ex);
    CHECK(dim == 512);
    CHECK(reid_extractor_dim(NULL) == 0);
    EXPECT(reid_extractor_input_size(ex, &h, NULL), REID_INVALID_ARGUMENT);
    EXPECT(reid_extractor_input_size(NULL, &h, &w), REID_INVALID_ARGUMENT);
    EXPECT(reid_extractor_input_size(ex, &h, &w), REID_OK);
    CHECK(h == 64 && w == 32);

    out = malloc(8 * dim * sizeof(float));
    out2 = malloc(8 * dim * sizeof(float));

    /* ---- files ---- */
    {
        char p0[4096], p1[4096], pt[4096];
        const char *paths[2], *bad_paths[2];
        size_t size = 0;
        unsigned char *jpeg;
        snprintf(p0, sizeof p0, "%s/person0.jpg", images_dir);
        snprintf(p1, sizeof p1, "%s/person2.png", images_dir);
        paths[0] = p0;
        paths[1] = p1;
        EXPECT(reid_extractor_extract_files(NULL, paths, 2, out, 2 * dim, &len),
               REID_INVALID_ARGUMENT);
        EXPECT(reid_extractor_extract_files(ex, NULL, 2, out, 2 * dim, &len),
               REID_INVALID_ARGUMENT);
        EXPECT(reid_extractor_extract_files(ex, paths, 2, NULL, 2 * dim, &len),
               REID_INVALID_ARGUMENT);
        out[0] = 42.0f;
        len = 0;
        EXPECT(reid_extractor_extract_files(ex, paths, 2, out, 2 * dim - 1, &len),
               REID_BUFFER_TOO_SMALL);
        CHECK(len == 2 * dim && out[0] == 42.0f);
        EXPECT(reid_extractor_extract_files(ex, paths, 2, out, 0, NULL), REID_BUFFER_TOO_SMALL);
        EXPECT(reid_extractor_extract_files(ex, paths, 0, NULL, 0, &len), REID_OK);
        CHECK(len == 0);
        /* A truncated JPEG and a missing file are named by index; nothing is written. */
        jpeg = read_file(p0, &size);
        snprintf(pt, sizeof pt, "%s/truncated.jpg", work);
        write_file(pt, jpeg, size / 2);
        bad_paths[0] = p0;
        bad_paths[1] = pt;
        EXPECT_MSG(reid_extractor_extract_files(ex, bad_paths, 2, out, 2 * dim, &len),
                   REID_BAD_IMAGE, "input 1");
        CHECK(out[0] == 42.0f);
        bad_paths[1] = "/nonexistent/person.jpg";
        EXPECT_MSG(reid_extractor_extract_files(ex, bad_paths, 2, out, 2 * dim, &len),
                   REID_BAD_IMAGE, "/nonexistent/person.jpg");
        EXPECT(reid_extractor_extract_files(ex, paths, 2, out, 8 * dim, &len), REID_OK);
        CHECK(len == 2 * dim);
        CHECK(fabsf(norm(out, dim) - 1.0f) < 1e-4f && fabsf(norm(out + dim, dim) - 1.0f) < 1e-4f);

        /* ---- encoded bytes: the same images give the same embeddings ---- */
        {
            size_t size1 = 0;
            unsigned char *png = read_file(p1, &size1);
            const unsigned char *blobs[2];
            size_t sizes[2];
            blobs[0] = jpeg;
            blobs[1] = png;
            sizes[0] = size;
            sizes[1] = size1;
            EXPECT(reid_extractor_extract_encoded(ex, blobs, NULL, 2, out2, 2 * dim, &len),
                   REID_INVALID_ARGUMENT);
            blobs[1] = NULL;
            EXPECT_MSG(reid_extractor_extract_encoded(ex, blobs, sizes, 2, out2, 2 * dim, &len),
                       REID_INVALID_ARGUMENT, "images[1]");
            blobs[1] = png;
            sizes[1] = 0;
            EXPECT_MSG(reid_extractor_extract_encoded(ex, blobs, sizes, 2, out2, 2 * dim, &len),
                       REID_BAD_IMAGE, "input 1");
            sizes[1] = size1 / 3;
            EXPECT_MSG(reid_extractor_extract_encoded(ex, blobs, sizes, 2, out2, 2 * dim, &len),
                       REID_BAD_IMAGE, "input 1");
            sizes[0] = size / 2;
            sizes[1] = size1;
            EXPECT_MSG(reid_extractor_extract_encoded(ex, blobs, sizes, 2, out2, 2 * dim, &len),
                       REID_BAD_IMAGE, "input 0");
            sizes[0] = size;
            EXPECT(reid_extractor_extract_encoded((const reid_extractor *)g, blobs, sizes, 2, out2,
                                                  2 * dim, &len),
                   REID_INVALID_ARGUMENT); /* g is still NULL here */
            EXPECT(reid_extractor_extract_encoded(ex, blobs, sizes, 2, out2, 2 * dim, &len),
                   REID_OK);
            CHECK(max_abs_diff(out, out2, 2 * dim) == 0.0f);
            free(png);
        }
        free(jpeg);
    }

    /* ---- pixel buffers ---- */
    {
        const size_t W = 50, H = 100;
        unsigned char *rgb = make_rgb(W, H);
        unsigned char *bgr = malloc(W * H * 3), *rgba = malloc((W * 4 + 12) * H),
                      *gray = malloc(W * H);
        reid_image images[3];
        float *ref = malloc(dim * sizeof(float));
        size_t x, y;
        for (y = 0; y < H; y++)
            for (x = 0; x < W; x++) {
                const unsigned char *s = rgb + (y * W + x) * 3;
                unsigned char *b = bgr + (y * W + x) * 3, *a = rgba + y * (W * 4 + 12) + x * 4;
                b[0] = s[2];
                b[1] = s[1];
                b[2] = s[0];
                a[0] = s[0];
                a[1] = s[1];
                a[2] = s[2];
                a[3] = 255;
                gray[y * W + x] = s[1];
            }
        images[0].data = rgb;
        images[0].width = W;
        images[0].height = H;
        images[0].stride = 0;
        images[0].format = REID_PIXEL_FORMAT_RGB8;
        images[1] = images[0];
        images[1].data = bgr;
        images[1].format = REID_PIXEL_FORMAT_BGR8;
        images[2] = images[0];
        images[2].data = rgba;
        images[2].stride = W * 4 + 12;
        images[2].format = REID_PIXEL_FORMAT_RGBA8;
        EXPECT(reid_extractor_extract_images(ex, images, 3, out, 3 * dim, &len), REID_OK);
        CHECK(max_abs_diff(out, out + dim, dim) == 0.0f);
        CHECK(max_abs_diff(out, out + 2 * dim, dim) == 0.0f);
        memcpy(ref, out, dim * sizeof(float));

        images[1].data = NULL;
        EXPECT_MSG(reid_extractor_extract_images(ex, images, 3, out, 3 * dim, &len),
                   REID_INVALID_ARGUMENT, "images[1]");
        images[1].data = bgr;
        images[1].format = 17;
        EXPECT_MSG(reid_extractor_extract_images(ex, images, 3, out, 3 * dim, &len),
                   REID_INVALID_ARGUMENT, "pixel format");
        images[1].format = REID_PIXEL_FORMAT_BGR8;
        images[2].stride = W * 4 - 1;
        EXPECT_MSG(reid_extractor_extract_images(ex, images, 3, out, 3 * dim, &len),
                   REID_INVALID_ARGUMENT, "stride");
        images[2].stride = W * 4 + 12;
        images[1].width = 0;
        EXPECT_MSG(reid_extractor_extract_images(ex, images, 3, out, 3 * dim, &len),
                   REID_BAD_IMAGE, "input 1");
        images[1].width = W;
        EXPECT(reid_extractor_extract_images(ex, NULL, 3, out, 3 * dim, &len),
               REID_INVALID_ARGUMENT);
        images[0].data = gray;
        images[0].format = REID_PIXEL_FORMAT_GRAY8;
        EXPECT(reid_extractor_extract_images(ex, images, 1, out, dim, &len), REID_OK);
        CHECK(fabsf(norm(out, dim) - 1.0f) < 1e-4f);

        /* ---- a tracklet: the normalized mean (or maximum) of its images' embeddings ---- */
        {
            float pooled[1024], want[2][1024];
            reid_image track[3];
            size_t d;
            int k;
            track[0] = images[0];
            track[0].data = rgb;
            track[0].format = REID_PIXEL_FORMAT_RGB8;
            track[0].stride = 0;
            track[1] = track[0];
            track[1].data = gray;
            track[1].format = REID_PIXEL_FORMAT_GRAY8;
            track[2] = images[2];
            CHECK(dim <= 1024);
            EXPECT(reid_extractor_extract_images(ex, track, 3, out, 3 * dim, &len), REID_OK);
            for (d = 0; d < dim; d++) {
                const float a = out[d], b = out[dim + d], c = out[2 * dim + d];
                want[0][d] = (a + b + c) / 3.0f;
                want[1][d] = a > b ? (a > c ? a : c) : (b > c ? b : c);
            }
            for (k = 0; k < 2; k++) {
                const float n = norm(want[k], dim);
                for (d = 0; d < dim; d++) want[k][d] /= n;
            }
            CHECK(max_abs_diff(want[0], want[1], dim) > 1e-3f);
            EXPECT(reid_extractor_extract_tracklet(ex, track, 3, REID_POOLING_AVG, pooled, dim, &len),
                   REID_OK);
            CHECK(len == dim && max_abs_diff(pooled, want[0], dim) < 1e-5f);
            EXPECT(reid_extractor_extract_tracklet(ex, track, 3, REID_POOLING_MAX, pooled, dim, &len),
                   REID_OK);
            CHECK(max_abs_diff(pooled, want[1], dim) < 1e-5f);
            EXPECT_MSG(reid_extractor_extract_tracklet(ex, track, 0, REID_POOLING_AVG, pooled, dim,
                                                       &len),
                       REID_INVALID_ARGUMENT, "at least one image");
            EXPECT_MSG(reid_extractor_extract_tracklet(ex, track, 3, 7, pooled, dim, &len),
                       REID_INVALID_ARGUMENT, "pooling");
            EXPECT(reid_extractor_extract_tracklet(ex, track, 3, REID_POOLING_AVG, pooled, dim - 1,
                                                   &len),
                   REID_BUFFER_TOO_SMALL);
            CHECK(len == dim);
            EXPECT(reid_extractor_extract_tracklet(ex, NULL, 3, REID_POOLING_AVG, pooled, dim, &len),
                   REID_INVALID_ARGUMENT);
        }

        /* ---- boxes: a box equals the same pixels passed as an image with a stride ---- */
        {
            reid_box boxes[3];
            reid_image frame = {0}, crop = {0};
            frame.data = rgb;
            frame.width = W;
            frame.height = H;
            frame.format = REID_PIXEL_FORMAT_RGB8;
            boxes[0].x = 10;
            boxes[0].y = 20;
            boxes[0].width = 30;
            boxes[0].height = 60;
            boxes[1].x = -20; /* clipped to the whole frame */
            boxes[1].y = -20;
            boxes[1].width = W + 40.0f;
            boxes[1].height = H + 40.0f;
            boxes[2].x = W + 5.0f; /* outside */
            boxes[2].y = 0;
            boxes[2].width = 10;
            boxes[2].height = 10;
            EXPECT_MSG(reid_extractor_extract_boxes(ex, &frame, boxes, 3, out, 3 * dim, &len),
                       REID_BAD_IMAGE, "input 2");
            EXPECT(reid_extractor_extract_boxes(ex, NULL, boxes, 2, out, 2 * dim, &len),
                   REID_INVALID_ARGUMENT);
            EXPECT(reid_extractor_extract_boxes(ex, &frame, NULL, 2, out, 2 * dim, &len),
                   REID_INVALID_ARGUMENT);
            EXPECT(reid_extractor_extract_boxes(ex, &frame, boxes, 2, out, 2 * dim, &len), REID_OK);
            crop.data = rgb + (20 * W + 10) * 3;
            crop.width = 30;
            crop.height = 60;
            crop.stride = W * 3;
            crop.format = REID_PIXEL_FORMAT_RGB8;
            EXPECT(reid_extractor_extract_images(ex, &crop, 1, out2, dim, &len), REID_OK);
            CHECK(max_abs_diff(out, out2, dim) == 0.0f);
            CHECK(max_abs_diff(out + dim, ref, dim) == 0.0f);
        }
        free(rgb);
        free(bgr);
        free(rgba);
        free(gray);
        free(ref);
    }

    /* ---- gallery in memory ---- */
    EXPECT(reid_gallery_new(dim, 5, &g), REID_INVALID_ARGUMENT);
    EXPECT(reid_gallery_new(dim, REID_METRIC_COSINE, NULL), REID_INVALID_ARGUMENT);
    EXPECT(reid_gallery_new(dim, REID_METRIC_COSINE, &g), REID_OK);
    CHECK(reid_gallery_dim(g) == dim && reid_gallery_len(g) == 0);
    CHECK(reid_gallery_dim(NULL) == 0 && reid_gallery_len(NULL) == 0);
    CHECK(reid_gallery_len((const reid_gallery *)ex) == 0);
    CHECK(reid_extractor_dim((const reid_extractor *)g) == 0);
    {
        size_t n = 0;
        float *v = malloc(4 * dim * sizeof(float)), *got = malloc(dim * sizeof(float));
        uint64_t identities[4] = {7, 7, 8, 9}, ids[4] = {0}, given[2] = {100, 100}, id = 0,
                 identity = 0;
        int32_t cameras[4] = {1, 2, 1, 3}, camera = 0;
        reid_match matches[4];
        size_t counts[2] = {0, 0}, removed = 0;
        reid_search_options so = reid_search_options_default();
        for (i = 0; i < 4 * dim; i++) v[i] = (float)((i * 7919) % 101) - 50.0f;

        EXPECT(reid_gallery_add(NULL, v, dim, 1, 1, &id), REID_INVALID_ARGUMENT);
        EXPECT_MSG(reid_gallery_add((reid_gallery *)ex, v, dim, 1, 1, &id),
                   REID_INVALID_HANDLE, "reid_gallery");
        EXPECT(reid_gallery_add(g, v, dim - 1, 1, 1, &id), REID_DIMENSION_MISMATCH);
        EXPECT(reid_gallery_add(g, NULL, dim, 1, 1, &id), REID_INVALID_ARGUMENT);
        got[0] = v[5];
        v[5] = NAN;
        EXPECT_MSG(reid_gallery_add(g, v, dim, 1, 1, &id), REID_INVALID_ARGUMENT, "NaN");
        v[5] = got[0];
        EXPECT(reid_gallery_add_batch(g, v, 4, dim + 1, NULL, identities, cameras, ids),
               REID_DIMENSION_MISMATCH);
        EXPECT(reid_gallery_add_batch(g, v, 4, dim, NULL, NULL, cameras, ids),
               REID_INVALID_ARGUMENT);
        EXPECT(reid_gallery_add_batch(g, v, 2, dim, given, identities, cameras, ids),
               REID_INVALID_ARGUMENT);
        CHECK(reid_gallery_len(g) == 0);
        EXPECT(reid_gallery_add_batch(g, v, 4, dim, NULL, identities, cameras, ids), REID_OK);
        CHECK(reid_gallery_len(g) == 4);
        {
            size_t count = 0;
            EXPECT(reid_gallery_count(g, &count), REID_OK);
            CHECK(count == 4);
            EXPECT(reid_gallery_count(g, NULL), REID_INVALID_ARGUMENT);
            EXPECT(reid_gallery_count(NULL, &count), REID_INVALID_ARGUMENT);
            EXPECT(reid_gallery_count((const reid_gallery *)ex, &count), REID_INVALID_HANDLE);
        }
        {
            /* the extractor's fingerprint binds the gallery to its model */
            char fp[65], small[8];
            size_t fp_len = 0;
            EXPECT(reid_extractor_fingerprint(ex, small, sizeof small, &fp_len),
                   REID_BUFFER_TOO_SMALL);
            CHECK(fp_len == 64);
            EXPECT(reid_extractor_fingerprint(ex, NULL, 4, &fp_len), REID_INVALID_ARGUMENT);
            EXPECT(reid_extractor_fingerprint(ex, fp, sizeof fp, NULL), REID_OK);
            CHECK(strlen(fp) == 64);
            EXPECT(reid_gallery_bind_model(g, fp, 0), REID_OK);
            EXPECT(reid_gallery_bind_model(g, "another-model", 0), REID_MODEL_MISMATCH);
            EXPECT(reid_gallery_bind_model(g, NULL, 0), REID_INVALID_ARGUMENT);
            EXPECT(reid_gallery_bind_model(g, fp, 0), REID_OK);
            CHECK(strcmp(reid_status_str(REID_MODEL_MISMATCH), "REID_MODEL_MISMATCH") == 0);
            /* an export carries no calibrated threshold until `reid calibrate` writes one */
            {
                float threshold = 0;
                EXPECT_MSG(reid_extractor_calibration(ex, &threshold, NULL, NULL), REID_NOT_FOUND,
                           "reid calibrate");
                EXPECT(reid_extractor_calibration(ex, NULL, NULL, NULL), REID_INVALID_ARGUMENT);
                EXPECT(reid_gallery_adopt_calibration(g, ex), REID_NOT_FOUND);
                EXPECT(reid_gallery_adopt_calibration(g, NULL), REID_INVALID_ARGUMENT);
                EXPECT(reid_gallery_adopt_calibration(g, (const reid_extractor *)g),
                       REID_INVALID_HANDLE);
            }
        }
        CHECK(ids[0] != ids[1] && ids[1] != ids[2] && ids[2] != ids[3]);

        /* search */
        so.k = 0;
        EXPECT(reid_gallery_search(g, v, dim, &so, matches, 4, &len), REID_INVALID_ARGUMENT);
        so.k = 3;
        so.flags = 64;
        EXPECT(reid_gallery_search(g, v, dim, &so, matches, 4, &len), REID_INVALID_ARGUMENT);
        so.flags = 0;
        EXPECT(reid_gallery_search(g, v, dim, &so, matches, 4, NULL), REID_INVALID_ARGUMENT);
        len = 0;
        EXPECT(reid_gallery_search(g, v, dim, &so, matches, 2, &len), REID_BUFFER_TOO_SMALL);
        CHECK(len == 3);
        EXPECT(reid_gallery_search(g, v, dim - 1, &so, matches, 4, &len), REID_DIMENSION_MISMATCH);
        EXPECT(reid_gallery_search(g, NULL, dim, &so, matches, 4, &len), REID_INVALID_ARGUMENT);
        EXPECT(reid_gallery_search((const reid_gallery *)ex, v, dim, &so, matches, 4, &len),
               REID_INVALID_HANDLE);
        EXPECT(reid_gallery_search(g, v + dim, dim, &so, matches, 4, &len), REID_OK);
        CHECK(len == 3 && matches[0].id == ids[1] && matches[0].identity == 7 &&
              matches[0].camera == 2 && fabsf(matches[0].score - 1.0f) < 1e-5f);
        CHECK(matches[0].score >= matches[1].score && matches[1].score >= matches[2].score);
        so.flags = REID_SEARCH_GROUP_BY_IDENTITY | REID_SEARCH_EXCLUDE_CAMERA;
        so.exclude_camera = 2;
        so.k = 4;
        EXPECT(reid_gallery_search(g, v + dim, dim, &so, matches, 4, &len), REID_OK);
        CHECK(len == 3);
        for (i = 0; i < len; i++) CHECK(matches[i].camera != 2);
        so.flags = REID_SEARCH_MIN_SCORE;
        so.min_score = 0.999f;
        EXPECT(reid_gallery_search(g, v + 3 * dim, dim, &so, matches, 4, &len), REID_OK);
        CHECK(len == 1 && matches[0].id == ids[3]);
        EXPECT(reid_gallery_search(g, v, dim, NULL, matches, 4, &len), REID_BUFFER_TOO_SMALL);
        CHECK(len == 10);
        so = reid_search_options_default();
        so.k = 2;
        EXPECT(reid_gallery_search_batch(g, v, 2, dim, &so, matches, 3, counts),
               REID_BUFFER_TOO_SMALL);
        EXPECT(reid_gallery_search_batch(g, v, 2, dim, &so, matches, 4, NULL),
               REID_INVALID_ARGUMENT);
        EXPECT(reid_gallery_search_batch(g, v, 2, dim, &so, matches, 4, counts), REID_OK);
        CHECK(counts[0] == 2 && counts[1] == 2 && matches[0].id == ids[0] &&
              matches[2].id == ids[1]);

        /* get / update / remove */
        n = 0;
        EXPECT(reid_gallery_get(g, ids[2], got, dim - 1, &n, &identity, &camera),
               REID_BUFFER_TOO_SMALL);
        CHECK(n == dim);
        EXPECT(reid_gallery_get(g, 424242, got, dim, NULL, &identity, &camera), REID_NOT_FOUND);
        EXPECT(reid_gallery_get(g, ids[2], NULL, dim, NULL, &identity, &camera),
               REID_INVALID_ARGUMENT);
        EXPECT(reid_gallery_get(g, ids[2], got, dim, NULL, &identity, &camera), REID_OK);
        CHECK(identity == 8 && camera == 1 && fabsf(norm(got, dim) - 1.0f) < 1e-5f);
        EXPECT(reid_gallery_update(g, 424242, v, dim, 1, 1), REID_NOT_FOUND);
        EXPECT(reid_gallery_update(g, ids[2], v, dim + 3, 1, 1), REID_DIMENSION_MISMATCH);
        EXPECT_MSG(reid_gallery_update(g, ids[2], v, dim, 70, -1), REID_INVALID_ARGUMENT,
                   "negative");
        EXPECT(reid_gallery_update(g, ids[2], v, dim, 70, 5), REID_OK);
        EXPECT(reid_gallery_get(g, ids[2], got, dim, &n, &identity, &camera), REID_OK);
        CHECK(n == dim);
        CHECK(identity == 70 && camera == 5);
        EXPECT_MSG(reid_gallery_remove(g, 424242), REID_NOT_FOUND, "424242");
        EXPECT(reid_gallery_remove(NULL, ids[0]), REID_INVALID_ARGUMENT);
        EXPECT(reid_gallery_remove(g, ids[3]), REID_OK);
        EXPECT(reid_gallery_remove(g, ids[3]), REID_NOT_FOUND);
        EXPECT(reid_gallery_remove_identity(g, 7, &removed), REID_OK);
        CHECK(removed == 2 && reid_gallery_len(g) == 1);
        EXPECT(reid_gallery_remove_identity(g, 7, &removed), REID_OK);
        CHECK(removed == 0);
        EXPECT(reid_gallery_add(g, v, dim, 7, 1, &id), REID_OK);
        CHECK(reid_gallery_len(g) == 2);
        CHECK(reid_gallery_contains(g, id) == 1 && reid_gallery_contains(g, id + 1000) == 0);
        CHECK(reid_gallery_contains(NULL, id) == 0);
        CHECK(reid_gallery_metric(g) == REID_METRIC_COSINE && reid_gallery_metric(NULL) == -1);
        {
            /* ids: the needed count when the buffer is short, then the ids ascending */
            uint64_t listed[2] = {0, 0};
            EXPECT(reid_gallery_ids(g, listed, 1, &n), REID_BUFFER_TOO_SMALL);
            CHECK(n == 2 && listed[0] == 0);
            EXPECT(reid_gallery_ids(g, listed, 2, NULL), REID_INVALID_ARGUMENT);
            EXPECT(reid_gallery_ids(g, NULL, 2, &n), REID_INVALID_ARGUMENT);
            EXPECT(reid_gallery_ids(g, listed, 2, &n), REID_OK);
            CHECK(n == 2 && listed[0] < listed[1] && reid_gallery_contains(g, listed[0]) &&
                  reid_gallery_contains(g, listed[1]) && (listed[0] == id || listed[1] == id));
            EXPECT_MSG(reid_gallery_add(g, v, dim, 7, -3, &id), REID_INVALID_ARGUMENT,
                       "camera -3 is negative");
            CHECK(reid_gallery_len(g) == 2);
        }

        /* ---- files: save / load / open, corrupt and truncated ones untouched ---- */
        snprintf(gallery_path, sizeof gallery_path, "%s/saved.reidg", work);
        EXPECT(reid_gallery_save(g, NULL), REID_INVALID_ARGUMENT);
        snprintf(path, sizeof path, "%s/no/such/dir/g.reidg", work);
        CHECK(reid_gallery_save(g, path) != REID_OK);
        EXPECT(reid_gallery_save(g, gallery_path), REID_OK);
        EXPECT(reid_gallery_load(gallery_path, NULL), REID_INVALID_ARGUMENT);
        EXPECT(reid_gallery_load(gallery_path, &g2), REID_OK);
        CHECK(reid_gallery_len(g2) == 2 && reid_gallery_dim(g2) == dim);
        EXPECT(reid_gallery_get(g2, ids[2], got, dim, NULL, &identity, &camera), REID_OK);
        CHECK(identity == 70 && camera == 5);
        reid_gallery_free(g2);
        g2 = NULL;
        EXPECT(reid_gallery_create(gallery_path, dim, REID_METRIC_COSINE, &g2),
               REID_GALLERY_ERROR);
        {
            size_t size = 0;
            unsigned char *bytes = read_file(gallery_path, &size);
            char corrupt[4096], truncated[4096];
            snprintf(truncated, sizeof truncated, "%s/truncated.reidg", work);
            write_file(truncated, bytes, size - 100);
            free(bytes);
            bytes = read_file(truncated, &size);
            EXPECT(reid_gallery_open(truncated, &g2), REID_GALLERY_ERROR);
            EXPECT(reid_gallery_load(truncated, &g2), REID_GALLERY_ERROR);
            CHECK(same_file(truncated, bytes, size));
            free(bytes);
            snprintf(corrupt, sizeof corrupt, "%s/corrupt.reidg", work);
            write_file(corrupt, "SQLite format 3\0 but then nothing sensible at all....", 54);
            bytes = read_file(corrupt, &size);
            EXPECT(reid_gallery_open(corrupt, &g2), REID_GALLERY_ERROR);
            CHECK(same_file(corrupt, bytes, size));
            free(bytes);
            CHECK(g2 == NULL);
        }
        snprintf(path, sizeof path, "%s/missing.reidg", work);
        CHECK(reid_gallery_open(path, &g2) != REID_OK && g2 == NULL);

        /* durable: create, mutate, free, reopen */
        snprintf(path, sizeof path, "%s/durable.reidg", work);
        EXPECT(reid_gallery_create(path, dim, 9, &g2), REID_INVALID_ARGUMENT);
        EXPECT(reid_gallery_create(path, dim, REID_METRIC_EUCLIDEAN, &g2), REID_OK);
        EXPECT(reid_gallery_add_batch(g2, v, 3, dim, NULL, identities, cameras, ids), REID_OK);
        EXPECT(reid_gallery_remove(g2, ids[1]), REID_OK);
        reid_gallery_free(g2);
        g2 = NULL;
        EXPECT(reid_gallery_open(path, &g2), REID_OK);
        CHECK(reid_gallery_len(g2) == 2);
        {
            reid_match ten[10];
            EXPECT(reid_gallery_search(g2, v + 2 * dim, dim, NULL, ten, 10, &len), REID_OK);
            /* Euclidean: the stored row itself is at distance 0, the best. */
            CHECK(len == 2 && ten[0].id == ids[2] && fabsf(ten[0].score) < 1e-3f &&
                  ten[1].score > ten[0].score);
        }
        reid_gallery_free(g2);
        g2 = NULL;

        /* npz export / import */
        snprintf(path, sizeof path, "%s/gallery.npz", work);
        EXPECT(reid_gallery_export_npz(g, NULL), REID_INVALID_ARGUMENT);
        EXPECT(reid_gallery_export_npz(g, path), REID_OK);
        EXPECT(reid_gallery_new(dim, REID_METRIC_COSINE, &g2), REID_OK);
        EXPECT(reid_gallery_import_npz(g2, path, &removed), REID_OK);
        CHECK(removed == 2 && reid_gallery_len(g2) == 2);
        EXPECT(reid_gallery_import_npz(g2, path, &removed), REID_INVALID_ARGUMENT); /* same ids */
        CHECK(reid_gallery_len(g2) == 2);
        reid_gallery_free(g2);
        EXPECT(reid_gallery_new(dim / 2, REID_METRIC_COSINE, &g2), REID_OK);
        EXPECT(reid_gallery_import_npz(g2, path, &removed), REID_INVALID_ARGUMENT);
        reid_gallery_free(g2);
        snprintf(path, sizeof path, "%s/corrupt.npz", work);
        write_file(path, "PK\x03\x04 not really a zip", 22);
        EXPECT(reid_gallery_new(dim, REID_METRIC_COSINE, &g2), REID_OK);
        EXPECT(reid_gallery_import_npz(g2, path, &removed), REID_DATA_FILE_ERROR);
        CHECK(reid_gallery_len(g2) == 0);
        reid_gallery_free(g2);
        free(v);
        free(got);
    }

    /* ---- a graph taking uint8 BGR NHWC pixels embeds as the float export does ---- */
    {
        reid_extractor *ex8 = NULL;
        const char *files[2];
        char p0[4096], p1[4096];
        size_t n8 = 0;
        snprintf(path, sizeof path, "%s/uint8.onnx", work);
        snprintf(p0, sizeof p0, "%s/person0.jpg", images_dir);
        snprintf(p1, sizeof p1, "%s/person2.png", images_dir);
        files[0] = p0;
        files[1] = p1;
        EXPECT(reid_extractor_new(path, NULL, &ex8), REID_OK);
        EXPECT(reid_extractor_extract_files(ex8, files, 2, out, 2 * dim, &n8), REID_OK);
        EXPECT(reid_extractor_extract_files(ex, files, 2, out2, 2 * dim, &n8), REID_OK);
        CHECK(n8 == 2 * dim && max_abs_diff(out, out2, 2 * dim) < 1e-4f);
        reid_extractor_free(ex8);
    }

    /* ---- crops kept with entries, and re-embedding them with a model in one call ---- */
    {
        reid_gallery *kept = NULL;
        const char *names[3] = {"person0.jpg", "person2.png", "person5.webp"};
        unsigned char *crops[3] = {NULL, NULL, NULL}, back[1];
        size_t sizes[3] = {0, 0, 0}, n = 0, count = 0;
        uint64_t ids[3] = {0, 0, 0};
        float *v = malloc(3 * dim * sizeof(float)), *want = malloc(3 * dim * sizeof(float)),
              *got = malloc(dim * sizeof(float));
        unsigned char *copy = NULL;
        char fp[65];
        uint64_t identity = 0;
        int32_t camera = 0;
        for (i = 0; i < 3 * dim; i++) v[i] = (float)((i * 37) % 11) - 5.0f;
        for (i = 0; i < 3; i++) {
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", images_dir, names[i]);
            crops[i] = read_file(p, &sizes[i]);
            CHECK(crops[i] != NULL);
        }
        EXPECT(reid_gallery_new(dim, REID_METRIC_COSINE, &kept), REID_OK);
        {
            uint64_t who[3] = {1, 2, 3};
            int32_t cams[3] = {0, 0, 1};
            EXPECT(reid_gallery_add_batch(kept, v, 3, dim, NULL, who, cams, ids), REID_OK);
        }
        EXPECT_MSG(reid_gallery_set_crop(kept, ids[0], crops[0], sizes[0]),
                   REID_INVALID_ARGUMENT, "keeps no crops");
        EXPECT(reid_gallery_keep_crops(kept, 0), REID_INVALID_ARGUMENT);
        EXPECT(reid_gallery_keep_crops(NULL, 1000), REID_INVALID_ARGUMENT);
        EXPECT(reid_gallery_keep_crops(kept, 1 << 20), REID_OK);
        EXPECT(reid_gallery_set_crop(kept, ids[0], NULL, 10), REID_INVALID_ARGUMENT);
        EXPECT(reid_gallery_set_crop(kept, ids[0], (const unsigned char *)"junk", 4),
               REID_INVALID_ARGUMENT);
        EXPECT(reid_gallery_set_crop(kept, 424242, crops[0], sizes[0]), REID_NOT_FOUND);
        EXPECT(reid_gallery_set_crop(kept, ids[0], crops[0], sizes[0]), REID_OK);
        EXPECT(reid_gallery_set_crop(kept, ids[1], crops[1], sizes[1]), REID_OK);
        /* an entry without a crop stops the re-embedding before it starts */
        EXPECT_MSG(reid_gallery_reembed(kept, ex, &count), REID_INVALID_ARGUMENT, "no crop");
        EXPECT(reid_gallery_set_crop(kept, ids[2], crops[2], sizes[2]), REID_OK);
        /* read back: size first, a buffer too small, then the bytes */
        EXPECT(reid_gallery_crop(kept, ids[1], NULL, 0, &n), REID_BUFFER_TOO_SMALL);
        CHECK(n == sizes[1]);
        EXPECT(reid_gallery_crop(kept, ids[1], back, sizeof back, &n), REID_BUFFER_TOO_SMALL);
        EXPECT(reid_gallery_crop(kept, ids[1], back, sizeof back, NULL), REID_INVALID_ARGUMENT);
        EXPECT(reid_gallery_crop(kept, 424242, back, sizeof back, &n), REID_NOT_FOUND);
        copy = malloc(n);
        EXPECT(reid_gallery_crop(kept, ids[1], copy, n, &n), REID_OK);
        CHECK(n == sizes[1] && memcmp(copy, crops[1], n) == 0);
        free(copy);

        EXPECT(reid_gallery_reembed(NULL, ex, &count), REID_INVALID_ARGUMENT);
        EXPECT(reid_gallery_reembed(kept, NULL, &count), REID_INVALID_ARGUMENT);
        EXPECT(reid_gallery_reembed(kept, (const reid_extractor *)kept, &count),
               REID_INVALID_HANDLE);
        EXPECT(reid_gallery_bind_model(kept, "an-older-model", 0), REID_OK);
        EXPECT(reid_gallery_reembed(kept, ex, &count), REID_OK);
        CHECK(count == 3);
        /* every entry now holds the model's embedding of its crop, unit length */
        EXPECT(reid_extractor_extract_encoded(ex, (const unsigned char *const *)crops, sizes, 3,
                                              want, 3 * dim, &n),
               REID_OK);
        for (i = 0; i < 3; i++) {
            float scale = 1.0f / norm(want + i * dim, dim);
            size_t j;
            for (j = 0; j < dim; j++) want[i * dim + j] *= scale;
            EXPECT(reid_gallery_get(kept, ids[i], got, dim, &n, &identity, &camera), REID_OK);
            CHECK(identity == i + 1 && max_abs_diff(got, want + i * dim, dim) < 1e-6f);
        }
        /* and the gallery is bound to the model that made them */
        EXPECT(reid_extractor_fingerprint(ex, fp, sizeof fp, NULL), REID_OK);
        EXPECT(reid_gallery_bind_model(kept, "an-older-model", 0), REID_MODEL_MISMATCH);
        EXPECT(reid_gallery_bind_model(kept, fp, 0), REID_OK);
        reid_gallery_free(kept);
        for (i = 0; i < 3; i++) free(crops[i]);
        free(v);
        free(want);
        free(got);
    }

    /* ---- identity store: global identities across cameras, durable, and its bad input ---- */
    {
        reid_identity_store *store = NULL, *again = NULL;
        reid_matching_config config = reid_matching_config_default();
        reid_camera_link link = {0, 1, 0.0};
        reid_assignment a0, a1, a2, a3;
        reid_sighting seen[4];
        float crops[2 * 4] = {1, 0.1f, 0, 0, 1, -0.1f, 0, 0};
        float other[4] = {0, 0, 1, 0};
        float nan_crop[4] = {1, NAN, 0, 0};
        float quality[2] = {1, -1};
        reid_track t = {0, 1, 0.0, 10.0, crops, 2, 4, NULL};
        uint64_t found = 0;
        size_t moved = 0;

        CHECK(config.candidates == 10 && config.flags == 0 && config.links == NULL);
        config.flags = REID_MATCH_THRESHOLD;
        config.threshold = 0.8f;
        config.min_transit_seconds = 60.0;
        config.links = &link;
        config.link_count = 1;
        snprintf(path, sizeof path, "%s/identities.db", work);
        EXPECT(reid_identity_store_create(path, 4, &config, &store), REID_OK);
        CHECK(reid_identity_store_dim(store) == 4 && reid_identity_store_dim(NULL) == 0);
        /* Camera 0, then linked camera 1 at once: one person. */
        EXPECT(reid_identity_store_observe(store, &t, &a0), REID_OK);
        CHECK(a0.created && !a0.matched);
        t.camera = 1;
        t.time_start = 5.0;
        EXPECT(reid_identity_store_observe(store, &t, &a1), REID_OK);
        CHECK(!a1.created && a1.matched && a1.identity == a0.identity && a1.score > 0.99f);
        /* Camera 2 is linked to neither and 60 s are needed: someone else. */
        t.camera = 2;
        t.time_start = 20.0;
        t.time_end = 30.0;
        EXPECT(reid_identity_store_observe(store, &t, &a2), REID_OK);
        CHECK(a2.created && a2.identity != a0.identity);
        /* Long after, camera 2 again: the same look joins the best identity. */
        t.track = 2;
        t.time_start = 500.0;
        t.time_end = 510.0;
        EXPECT(reid_identity_store_observe(store, &t, &a3), REID_OK);
        CHECK(a3.matched && (a3.identity == a0.identity || a3.identity == a2.identity));
        EXPECT(reid_identity_store_identity_of(store, 1, 1, &found), REID_OK);
        CHECK(found == a0.identity);
        EXPECT_MSG(reid_identity_store_identity_of(store, 7, 1, &found), REID_NOT_FOUND,
                   "camera 7");
        EXPECT(reid_identity_store_sightings(store, a0.identity, seen, 0, &len),
               REID_BUFFER_TOO_SMALL);
        CHECK(len >= 2);
        EXPECT(reid_identity_store_sightings(store, a0.identity, seen, 4, &len), REID_OK);
        CHECK(seen[0].camera == 0 && seen[0].track == 1 && seen[0].time_start == 0.0 &&
              seen[1].camera == 1 && seen[1].time_start == 5.0);
        EXPECT(reid_identity_store_merge(store, a0.identity, a2.identity, &moved), REID_OK);
        CHECK(moved >= 1);
        EXPECT(reid_identity_store_merge(store, a0.identity, a2.identity, &moved),
               REID_NOT_FOUND);
        EXPECT(reid_identity_store_merge(store, a0.identity, a0.identity, NULL),
               REID_INVALID_ARGUMENT);
        EXPECT(reid_identity_store_split(store, 2, 1, &found), REID_OK);
        CHECK(found != a0.identity && found != a2.identity);
        EXPECT(reid_identity_store_split(store, 2, 99, &found), REID_NOT_FOUND);
        /* Bad reports: nothing is kept. */
        t.embeddings = nan_crop;
        t.crop_count = 1;
        EXPECT_MSG(reid_identity_store_observe(store, &t, NULL), REID_INVALID_ARGUMENT, "NaN");
        t.embeddings = crops;
        t.crop_count = 2;
        t.quality = quality;
        EXPECT(reid_identity_store_observe(store, &t, NULL), REID_INVALID_ARGUMENT);
        t.quality = NULL;
        t.dim = 5;
        EXPECT(reid_identity_store_observe(store, &t, NULL), REID_DIMENSION_MISMATCH);
        t.dim = 4;
        t.time_end = 1.0;
        EXPECT(reid_identity_store_observe(store, &t, NULL), REID_INVALID_ARGUMENT);
        t.time_end = 600.0;
        t.camera = -2;
        EXPECT_MSG(reid_identity_store_observe(store, &t, NULL), REID_INVALID_ARGUMENT,
                   "negative");
        t.embeddings = NULL;
        EXPECT_MSG(reid_identity_store_observe(store, &t, NULL), REID_INVALID_ARGUMENT, "NULL");
        EXPECT(reid_identity_store_observe(store, NULL, NULL), REID_INVALID_ARGUMENT);
        /* Bad configs are refused and the old one stays. */
        config.threshold = 2.0f;
        EXPECT_MSG(reid_identity_store_configure(store, &config), REID_INVALID_ARGUMENT,
                   "threshold");
        config.threshold = 0.8f;
        config.flags = 0x80;
        EXPECT_MSG(reid_identity_store_configure(store, &config), REID_INVALID_ARGUMENT, "flags");
        config.flags = REID_MATCH_THRESHOLD;
        link.camera_b = 0;
        EXPECT(reid_identity_store_configure(store, &config), REID_INVALID_ARGUMENT);
        link.camera_b = 1;
        config.links = NULL;
        EXPECT_MSG(reid_identity_store_configure(store, &config), REID_INVALID_ARGUMENT, "NULL");
        config.links = &link;
        /* A store that keeps none of its own needs a threshold: the calibration's. */
        {
            reid_identity_store *uncalibrated = NULL;
            reid_track u = {3, 1, 0.0, 1.0, other, 1, 4, NULL};
            EXPECT(reid_identity_store_new(4, NULL, &uncalibrated), REID_OK);
            EXPECT_MSG(reid_identity_store_observe(uncalibrated, &u, NULL),
                       REID_INVALID_ARGUMENT, "calibrat");
            reid_identity_store_free(uncalibrated);
        }
        EXPECT(reid_identity_store_new(0, NULL, &again), REID_INVALID_ARGUMENT);
        CHECK(again == NULL);
        EXPECT(reid_identity_store_create(path, 4, NULL, &again), REID_GALLERY_ERROR);
        reid_identity_store_free(store);
        /* Reopened: the tracks keep their identities; a plain gallery is not a store. */
        EXPECT(reid_identity_store_open(path, &again), REID_OK);
        EXPECT(reid_identity_store_identity_of(again, 1, 1, &found), REID_OK);
        CHECK(found == a0.identity);
        reid_identity_store_free(again);
        again = NULL;
        snprintf(path, sizeof path, "%s/durable.reidg", work);
        EXPECT_MSG(reid_identity_store_open(path, &again), REID_GALLERY_ERROR,
                   "not an identity store");
        CHECK(again == NULL);
        /* Handles of another type. */
        EXPECT(reid_identity_store_observe((const reid_identity_store *)g, &t, NULL),
               REID_INVALID_HANDLE);
        EXPECT(reid_identity_store_sightings((const reid_identity_store *)g, 1, seen, 4, &len),
               REID_INVALID_HANDLE);
        reid_identity_store_free((reid_identity_store *)g);
        CHECK(reid_gallery_len(g) == 2);
        reid_identity_store_free(NULL);

        /* A gallery's timed entries and time windows. */
        {
            reid_gallery *timed = NULL;
            reid_search_options window = reid_search_options_default();
            reid_match m[2];
            uint64_t seen_id = 0, untimed = 0;
            EXPECT(reid_gallery_new(4, REID_METRIC_COSINE, &timed), REID_OK);
            EXPECT(reid_gallery_add_timed(timed, other, 4, 1, 0, 100.0, 110.0, &seen_id), REID_OK);
            EXPECT(reid_gallery_add(timed, other, 4, 2, 0, &untimed), REID_OK);
            EXPECT_MSG(reid_gallery_add_timed(timed, other, 4, 1, 0, 3.0, 1.0, NULL),
                       REID_INVALID_ARGUMENT, "time span");
            EXPECT(reid_gallery_add_timed(timed, other, 4, 1, 0, NAN, 1.0, NULL),
                   REID_INVALID_ARGUMENT);
            EXPECT(reid_gallery_add_timed(timed, other, 5, 1, 0, 0.0, 1.0, NULL),
                   REID_DIMENSION_MISMATCH);
            CHECK(reid_gallery_len(timed) == 2);
            window.flags |= REID_SEARCH_TIME_WINDOW;
            window.time_from = 109.0;
            window.time_to = 200.0;
            window.k = 2;
            EXPECT(reid_gallery_search(timed, other, 4, &window, m, 2, &len), REID_OK);
            CHECK(len == 1 && m[0].id == seen_id);
            window.time_from = 111.0;
            EXPECT(reid_gallery_search(timed, other, 4, &window, m, 2, &len), REID_OK);
            CHECK(len == 0);
            window.time_to = 0.0;
            EXPECT_MSG(reid_gallery_search(timed, other, 4, &window, m, 2, &len),
                       REID_INVALID_ARGUMENT, "time span");
            reid_gallery_free(timed);
        }
    }

    /* ---- every entry point: a NULL handle and a handle of another type ---- */
    {
        const reid_extractor *not_ex = (const reid_extractor *)g;
        reid_gallery *not_g = (reid_gallery *)ex;
        reid_extractor_options *not_opts = (reid_extractor_options *)g;
        reid_extractor *none = NULL;
        const char *file = "person.jpg";
        const unsigned char *blob = (const unsigned char *)"x";
        size_t one = 1, n = 0, h2 = 0, w2 = 0;
        uint64_t u = 0, identity = 1;
        int32_t camera = 0;
        reid_image image = {0};
        reid_box box = {0, 0, 1, 1};
        reid_match m[10];
        float *vec = out;
#define BAD_HANDLES(fn, wrong, ...)                                                    \
    do {                                                                               \
        EXPECT_MSG(fn(NULL, __VA_ARGS__), REID_INVALID_ARGUMENT, "NULL");              \
        EXPECT_MSG(fn(wrong, __VA_ARGS__), REID_INVALID_HANDLE, "another kind");       \
    } while (0)
        BAD_HANDLES(reid_extractor_options_set_engine, not_opts, 0);
        BAD_HANDLES(reid_extractor_options_set_ort_library, not_opts, "libonnxruntime.so");
        BAD_HANDLES(reid_extractor_options_set_openvino, not_opts, "CPU", NULL, NULL, NULL);
        BAD_HANDLES(reid_extractor_options_set_execution_providers, not_opts, "cuda", NULL, false);
        BAD_HANDLES(reid_extractor_options_set_threads, not_opts, 1, 1);
        BAD_HANDLES(reid_extractor_options_set_max_batch, not_opts, 1);
        BAD_HANDLES(reid_extractor_options_set_input_size, not_opts, 1, 1);
        BAD_HANDLES(reid_extractor_options_set_channel_order, not_opts, 0);
        BAD_HANDLES(reid_extractor_options_set_normalization, not_opts, 1.0f, mean, std_ok);
        BAD_HANDLES(reid_extractor_options_set_normalize, not_opts, 1);
        BAD_HANDLES(reid_extractor_options_set_device, not_opts, "flex");
        BAD_HANDLES(reid_extractor_options_set_architecture, not_opts, "osnet_x0_25");
        EXPECT(reid_extractor_new(model, not_opts, &none), REID_INVALID_HANDLE);
        CHECK(none == NULL);
        BAD_HANDLES(reid_extractor_input_size, not_ex, &h2, &w2);
        BAD_HANDLES(reid_extractor_extract_encoded, not_ex, &blob, &one, 1, out, dim, &n);
        BAD_HANDLES(reid_extractor_extract_files, not_ex, &file, 1, out, dim, &n);
        BAD_HANDLES(reid_extractor_extract_images, not_ex, &image, 1, out, dim, &n);
        BAD_HANDLES(reid_extractor_extract_boxes, not_ex, &image, &box, 1, out, dim, &n);
        BAD_HANDLES(reid_gallery_save, not_g, "never.reidg");
        BAD_HANDLES(reid_gallery_add, not_g, vec, dim, identity, camera, &u);
        BAD_HANDLES(reid_gallery_add_timed, not_g, vec, dim, identity, camera, 0.0, 1.0, &u);
        BAD_HANDLES(reid_gallery_add_batch, not_g, vec, 1, dim, NULL, &identity, &camera, &u);
        BAD_HANDLES(reid_gallery_update, not_g, 0, vec, dim, identity, camera);
        BAD_HANDLES(reid_gallery_remove, not_g, 0);
        BAD_HANDLES(reid_gallery_remove_identity, not_g, identity, &n);
        BAD_HANDLES(reid_gallery_get, not_g, 0, out, dim, &n, &u, &camera);
        BAD_HANDLES(reid_gallery_ids, not_g, &u, 1, &n);
        BAD_HANDLES(reid_gallery_search, not_g, vec, dim, NULL, m, 10, &n);
        BAD_HANDLES(reid_gallery_search_batch, not_g, vec, 1, dim, NULL, m, 10, &n);
        BAD_HANDLES(reid_gallery_export_npz, not_g, "never.npz");
        BAD_HANDLES(reid_gallery_import_npz, not_g, "never.npz", &n);
        BAD_HANDLES(reid_gallery_keep_crops, not_g, 1000);
        BAD_HANDLES(reid_gallery_set_crop, not_g, 0, blob, one);
        BAD_HANDLES(reid_gallery_crop, not_g, 0, NULL, 0, &n);
        BAD_HANDLES(reid_gallery_reembed, not_g, ex, &n);
#undef BAD_HANDLES
    }

    /* ---- finetuner: arguments and files (training itself: examples/c/finetune.c) ---- */
    {
        reid_finetuner *job = NULL;
        reid_extractor *none_ex = NULL;
        const unsigned char junk[8] = {1, 2, 3, 4, 5, 6, 7, 8};
        float fm = 0, fr = 0;
        size_t n = 0;
        reid_image image = {0};
        unsigned char pixels[16 * 32 * 3];
        memset(pixels, 90, sizeof pixels);
        snprintf(path, sizeof path, "%s/finetune", work);
        EXPECT(reid_finetuner_new(NULL, weights, path, &job), REID_INVALID_ARGUMENT);
        EXPECT(reid_finetuner_new("osnet_x0_25", weights, NULL, &job), REID_INVALID_ARGUMENT);
        EXPECT(reid_finetuner_new("no_such_net", weights, path, &job), REID_UNKNOWN_ARCHITECTURE);
        EXPECT(reid_finetuner_new("osnet_x0_25", "/nonexistent.pth", path, &job), REID_IO_ERROR);
        EXPECT(reid_finetuner_new("osnet_x0_25", weights, path, NULL), REID_INVALID_ARGUMENT);
        CHECK(job == NULL);
        EXPECT(reid_finetuner_new("osnet_x0_25", weights, path, &job), REID_OK);
        EXPECT(reid_finetuner_set_epochs(job, 0), REID_INVALID_ARGUMENT);
        EXPECT(reid_finetuner_set_training(job, 8, -1.0, 0, 0), REID_INVALID_ARGUMENT);
        EXPECT(reid_finetuner_set_training(job, 8, 0.01, 64, 0), REID_INVALID_ARGUMENT);
        EXPECT(reid_finetuner_set_training(job, 8, 0.01, 64, 32), REID_OK);
        EXPECT_MSG(reid_finetuner_add_encoded(job, junk, sizeof junk, 1, 0, REID_SPLIT_TRAIN),
                   REID_BAD_IMAGE, "input 0");
        EXPECT(reid_finetuner_add_encoded(job, NULL, 10, 1, 0, REID_SPLIT_TRAIN),
               REID_INVALID_ARGUMENT);
        image.data = pixels;
        image.width = 16;
        image.height = 32;
        image.format = REID_PIXEL_FORMAT_RGB8;
        EXPECT(reid_finetuner_add_image(job, &image, 1, 0, 7), REID_INVALID_ARGUMENT);
        EXPECT(reid_finetuner_add_image(job, &image, 1, -2, REID_SPLIT_TRAIN),
               REID_INVALID_ARGUMENT);
        CHECK(reid_finetuner_len(job) == 0);
        EXPECT(reid_finetuner_add_image(job, &image, 1, 0, REID_SPLIT_TRAIN), REID_OK);
        CHECK(reid_finetuner_len(job) == 1 && reid_finetuner_len(NULL) == 0);
        EXPECT_MSG(reid_finetuner_evaluate(job, &fm, &fr), REID_INVALID_ARGUMENT, "held-out");
        EXPECT(reid_finetuner_evaluate(job, NULL, &fr), REID_INVALID_ARGUMENT);
        /* One image cannot fill a batch of 8: refused with a message, nothing trained. */
        EXPECT(reid_finetuner_run(job, NULL, NULL), REID_INVALID_ARGUMENT);
        EXPECT(reid_finetuner_add_folder(job, "/nonexistent/folder", &n), REID_INVALID_ARGUMENT);
        {
            reid_finetuner *not_job = (reid_finetuner *)g;
            EXPECT(reid_finetuner_set_epochs(NULL, 1), REID_INVALID_ARGUMENT);
            EXPECT(reid_finetuner_set_epochs(not_job, 1), REID_INVALID_HANDLE);
            EXPECT(reid_finetuner_set_training(not_job, 8, 0.1, 0, 0), REID_INVALID_HANDLE);
            EXPECT(reid_finetuner_add_image(not_job, &image, 1, 0, 0), REID_INVALID_HANDLE);
            EXPECT(reid_finetuner_add_encoded(not_job, junk, 8, 1, 0, 0), REID_INVALID_HANDLE);
            EXPECT(reid_finetuner_add_folder(not_job, path, &n), REID_INVALID_HANDLE);
            EXPECT(reid_finetuner_run(not_job, NULL, NULL), REID_INVALID_HANDLE);
            EXPECT(reid_finetuner_evaluate(not_job, &fm, &fr), REID_INVALID_HANDLE);
            EXPECT(reid_finetuner_save(not_job, "x.bpk"), REID_INVALID_HANDLE);
            EXPECT(reid_finetuner_export_onnx(not_job, "x.onnx"), REID_INVALID_HANDLE);
            EXPECT(reid_finetuner_new_extractor(not_job, NULL, &none_ex), REID_INVALID_HANDLE);
            EXPECT(reid_finetuner_run(NULL, NULL, NULL), REID_INVALID_ARGUMENT);
            CHECK(reid_finetuner_len((const reid_finetuner *)g) == 0);
            reid_finetuner_free((reid_finetuner *)g);
        }
        reid_finetuner_free(job);
        reid_finetuner_free(NULL);
    }

    /* ---- wrong-type frees are refused; the objects stay usable ---- */
    reid_gallery_free((reid_gallery *)ex);
    reid_extractor_free((reid_extractor *)g);
    reid_extractor_options_free((reid_extractor_options *)g);
    CHECK(reid_extractor_dim(ex) == dim && reid_gallery_len(g) == 2);
    reid_gallery_free(NULL);
    reid_extractor_free(NULL);

    /* ---- the Burn engine runs the same export and agrees with ONNX Runtime ---- */
    {
        reid_extractor *burn = NULL;
        char p0[4096];
        const char *paths[1];
        snprintf(p0, sizeof p0, "%s/person0.jpg", images_dir);
        paths[0] = p0;
        EXPECT(reid_extractor_options_new(&options), REID_OK);
        EXPECT(reid_extractor_options_set_engine(options, REID_ENGINE_BURN), REID_OK);
        EXPECT(reid_extractor_new(model, options, &burn), REID_OK);
        reid_extractor_options_free(options);
        EXPECT(reid_extractor_extract_files(burn, paths, 1, out, dim, &len), REID_OK);
        EXPECT(reid_extractor_extract_files(ex, paths, 1, out2, dim, &len), REID_OK);
        CHECK(max_abs_diff(out, out2, dim) < 1e-4f);
        char provider[64];
        size_t provider_len = 0;
        EXPECT(reid_extractor_execution_provider(ex, provider, sizeof provider, &provider_len),
               REID_OK);
        CHECK(strcmp(provider, "CPUExecutionProvider") == 0 && provider_len == 20);
        EXPECT(reid_extractor_execution_provider(burn, provider, sizeof provider, NULL), REID_OK);
        CHECK(strcmp(provider, "burn") == 0);
        EXPECT(reid_extractor_execution_provider(burn, provider, 2, NULL), REID_BUFFER_TOO_SMALL);
        reid_extractor_free(burn);
    }

    reid_gallery_free(g);
    reid_extractor_free(ex);
    free(out);
    free(out2);
    printf("%d checks, %d failures\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
