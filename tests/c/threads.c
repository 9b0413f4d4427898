/*
 * One extractor and one gallery shared by 10 threads for a bounded time: 8 threads extract
 * (encoded images, round robin) and search, 2 threads add and remove entries. Every
 * extraction must equal the single-threaded reference, every search must find the image's
 * permanent anchor entry first, and every mutation must succeed. Run by tests/ffi/installed_sdk.rs,
 * natively and under valgrind.
 *
 *   threads MODEL.onnx IMAGES_DIR SECONDS
 */
#include "reid.h"
#include "common.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define READERS 8
#define WRITERS 2
#define IMAGES 4
#define BATCH 5

static reid_extractor *extractor;
static reid_gallery *gallery;
static size_t dim;
static unsigned char *blobs[IMAGES];
static size_t sizes[IMAGES];
static float *reference;
static uint64_t anchors[IMAGES];
static double deadline;
static atomic_int errors;
static atomic_long extractions, searches, mutations;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void fail(const char *what, reid_status status) {
    char message[512] = "";
    reid_last_error_message(message, sizeof message, NULL);
    fprintf(stderr, "%s: %s: %s\n", what, reid_status_str(status), message);
    atomic_fetch_add(&errors, 1);
}

static void *reader(void *arg) {
    size_t k = (size_t)arg, i;
    float *embedding = malloc(dim * sizeof(float));
    reid_match matches[3];
    reid_search_options options = reid_search_options_default();
    options.k = 3;
    do {
        size_t image = k++ % IMAGES, len = 0;
        const unsigned char *blob = blobs[image];
        reid_status s = reid_extractor_extract_encoded(extractor, &blob, &sizes[image], 1,
                                                       embedding, dim, &len);
        if (s != REID_OK) {
            fail("extract", s);
            continue;
        }
        atomic_fetch_add(&extractions, 1);
        for (i = 0; i < dim; i++)
            if (fabsf(embedding[i] - reference[image * dim + i]) > 1e-5f) {
                fprintf(stderr, "extraction of image %zu differs at %zu\n", image, i);
                atomic_fetch_add(&errors, 1);
                break;
            }
        s = reid_gallery_search(gallery, embedding, dim, &options, matches, 3, &len);
        if (s != REID_OK) {
            fail("search", s);
            continue;
        }
        atomic_fetch_add(&searches, 1);
        if (len == 0 || matches[0].id != anchors[image] || matches[0].identity != 1000 + image ||
            matches[0].score < 0.9999f) {
            fprintf(stderr, "search for image %zu: wrong best match\n", image);
            atomic_fetch_add(&errors, 1);
        }
    } while (now() < deadline);
    free(embedding);
    return NULL;
}

static void *writer(void *arg) {
    uint64_t identity = 1 + (uint64_t)(size_t)arg;
    float *vectors = malloc(BATCH * dim * sizeof(float));
    uint64_t identities[BATCH], ids[BATCH];
    int32_t cameras[BATCH];
    unsigned seed = (unsigned)identity * 2654435761u;
    size_t i, round = 0;
    for (i = 0; i < BATCH; i++) {
        identities[i] = identity;
        cameras[i] = (int32_t)i;
    }
    do {
        reid_status s = REID_OK;
        for (i = 0; i < BATCH * dim; i++) {
            seed = seed * 1103515245u + 12345u;
            vectors[i] = (float)((seed >> 16) & 0x7fff) / 16384.0f - 1.0f;
        }
        s = reid_gallery_add_batch(gallery, vectors, BATCH, dim, NULL, identities, cameras, ids);
        if (s != REID_OK) {
            fail("add_batch", s);
            continue;
        }
        if (round++ % 2 == 0) {
            for (i = 0; i < BATCH; i++)
                if ((s = reid_gallery_remove(gallery, ids[i])) != REID_OK) fail("remove", s);
        } else {
            size_t removed = 0;
            s = reid_gallery_remove_identity(gallery, identity, &removed);
            if (s != REID_OK) fail("remove_identity", s);
            else if (removed != BATCH) {
                fprintf(stderr, "remove_identity removed %zu, not %d\n", removed, BATCH);
                atomic_fetch_add(&errors, 1);
            }
        }
        atomic_fetch_add(&mutations, 1);
    } while (now() < deadline);
    free(vectors);
    return NULL;
}

int main(int argc, char **argv) {
    static const char *names[IMAGES] = {"person0.jpg", "person1.jpg", "person2.png",
                                        "person3.jpg"};
    pthread_t threads[READERS + WRITERS];
    reid_extractor_options *options = NULL;
    const unsigned char *all[IMAGES];
    uint64_t identities[IMAGES];
    int32_t cameras[IMAGES] = {0, 0, 0, 0};
    size_t i, len = 0;
    char path[4096];
    reid_status s = REID_OK;

    if (argc != 4) {
        fprintf(stderr, "usage: %s MODEL IMAGES_DIR SECONDS\n", argv[0]);
        return 2;
    }
    for (i = 0; i < IMAGES; i++) {
        snprintf(path, sizeof path, "%s/%s", argv[2], names[i]);
        if (!(blobs[i] = read_file(path, &sizes[i]))) {
            fprintf(stderr, "cannot read %s\n", path);
            return 2;
        }
        all[i] = blobs[i];
        identities[i] = 1000 + i;
    }
    if (reid_extractor_options_new(&options) != REID_OK ||
        reid_extractor_options_set_threads(options, 1, 3) != REID_OK ||
        (s = reid_extractor_new(argv[1], options, &extractor)) != REID_OK) {
        fail("extractor", s);
        return 1;
    }
    reid_extractor_options_free(options);
    dim = reid_extractor_dim(extractor);
    reference = malloc(IMAGES * dim * sizeof(float));
    /* One image per call, as the readers do, so batching cannot change the numbers. */
    for (i = 0; i < IMAGES; i++)
        if ((s = reid_extractor_extract_encoded(extractor, &all[i], &sizes[i], 1,
                                                reference + i * dim, dim, &len)) != REID_OK) {
            fail("reference", s);
            return 1;
        }
    if ((s = reid_gallery_new(dim, REID_METRIC_COSINE, &gallery)) != REID_OK ||
        (s = reid_gallery_add_batch(gallery, reference, IMAGES, dim, NULL, identities, cameras,
                                    anchors)) != REID_OK) {
        fail("setup", s);
        return 1;
    }

    deadline = now() + atof(argv[3]);
    for (i = 0; i < READERS; i++) pthread_create(&threads[i], NULL, reader, (void *)i);
    for (i = 0; i < WRITERS; i++) pthread_create(&threads[READERS + i], NULL, writer, (void *)i);
    for (i = 0; i < READERS + WRITERS; i++) pthread_join(threads[i], NULL);

    if (reid_gallery_len(gallery) != IMAGES) {
        fprintf(stderr, "gallery holds %zu entries at the end, not %d\n",
                reid_gallery_len(gallery), IMAGES);
        atomic_fetch_add(&errors, 1);
    }
    printf("%ld extractions, %ld searches, %ld mutations, %d errors\n",
           atomic_load(&extractions), atomic_load(&searches), atomic_load(&mutations),
           atomic_load(&errors));
    reid_gallery_free(gallery);
    reid_extractor_free(extractor);
    for (i = 0; i < IMAGES; i++) free(blobs[i]);
    free(reference);
    return atomic_load(&errors) == 0 && atomic_load(&extractions) >= READERS ? 0 : 1;
}
