/*
 * The C API end to end: extract embeddings from image files, enrol them in a durable
 * gallery, search it, then reopen the gallery file and search again.
 *
 *   extract_and_search MODEL.onnx GALLERY_FILE IMAGE...
 *
 * Each image is enrolled as its own identity (its position on the command line), seen by
 * camera 0 or 1. Build:  cc extract_and_search.c $(pkg-config --cflags --libs reid)
 */
#include <reid.h>

#include <stdio.h>
#include <stdlib.h>

static int report(const char *what, reid_status status) {
    char message[1024] = "";
    reid_last_error_message(message, sizeof message, NULL);
    fprintf(stderr, "%s failed: %s: %s\n", what, reid_status_str(status), message);
    return 1;
}

#define TRY(what, call)                                    \
    do {                                                   \
        reid_status status_ = (call);                      \
        if (status_ != REID_OK) {                          \
            failed = report(what, status_);                \
            goto done;                                     \
        }                                                  \
    } while (0)

int main(int argc, char **argv) {
    reid_extractor *extractor = NULL;
    reid_gallery *gallery = NULL;
    float *embeddings = NULL;
    uint64_t *identities = NULL, *ids = NULL;
    int32_t *cameras = NULL;
    reid_match matches[3];
    reid_search_options options = reid_search_options_default();
    size_t count, dim, len, i, j;
    int failed = 0;

    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL.onnx GALLERY_FILE IMAGE...\n", argv[0]);
        return 2;
    }
    count = (size_t)argc - 3;
    printf("reid %s\n", reid_version());

    /* 1. Extract: one embedding (dim floats, L2-normalized) per image. */
    TRY("loading the model", reid_extractor_new(argv[1], NULL, &extractor));
    dim = reid_extractor_dim(extractor);
    embeddings = malloc(count * dim * sizeof(float));
    TRY("extracting",
        reid_extractor_extract_files(extractor, (const char *const *)(argv + 3), count,
                                     embeddings, count * dim, &len));
    printf("extracted %zu embeddings of %zu floats\n", count, dim);

    /* 2. Enrol them in a new gallery file; every change is committed to the file. */
    identities = malloc(count * sizeof *identities);
    cameras = malloc(count * sizeof *cameras);
    ids = malloc(count * sizeof *ids);
    for (i = 0; i < count; i++) {
        identities[i] = i;
        cameras[i] = (int32_t)(i % 2);
    }
    TRY("creating the gallery", reid_gallery_create(argv[2], dim, REID_METRIC_COSINE, &gallery));
    TRY("enrolling",
        reid_gallery_add_batch(gallery, embeddings, count, dim, NULL, identities, cameras, ids));

    /* 3. Search: the 3 best matches of each image. */
    options.k = 3;
    for (i = 0; i < count; i++) {
        TRY("searching", reid_gallery_search(gallery, embeddings + i * dim, dim, &options,
                                             matches, 3, &len));
        printf("query %zu:", i);
        for (j = 0; j < len; j++)
            printf("  identity %llu (%.3f)", (unsigned long long)matches[j].identity,
                   matches[j].score);
        printf("\n");
    }

    /* 4. Close the gallery, reopen the file, and search it again. */
    reid_gallery_free(gallery);
    gallery = NULL;
    TRY("reopening the gallery", reid_gallery_open(argv[2], &gallery));
    options.k = 1;
    TRY("searching", reid_gallery_search(gallery, embeddings, dim, &options, matches, 1, &len));
    printf("reopened %s: %zu entries; best match of image 0: identity %llu (%.3f)\n", argv[2],
           reid_gallery_len(gallery), (unsigned long long)matches[0].identity, matches[0].score);

done:
    reid_gallery_free(gallery);
    reid_extractor_free(extractor);
    free(embeddings);
    free(identities);
    free(cameras);
    free(ids);
    return failed;
}
