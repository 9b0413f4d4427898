/* Classification through the C ABI: `classify CLASSIFIER.onnx REID_MODEL.onnx IMAGE...`.
 * Prints the classifier's classes and each image's top-3 predictions (compared with the Rust
 * API by tests/ffi/installed_sdk.rs), and checks the error paths: NULL arguments, k = 0, a buffer too
 * small (which reports the size needed and writes nothing), a re-id model refused. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "reid.h"

static int failures = 0;

#define CHECK(cond)                                                       \
    do {                                                                  \
        if (!(cond)) {                                                    \
            fprintf(stderr, "check failed at line %d: %s\n", __LINE__, #cond); \
            failures++;                                                   \
        }                                                                 \
    } while (0)

int main(int argc, char **argv) {
    reid_classifier *classifier = NULL;
    reid_classifier *wrong = NULL;
    const unsigned char **images;
    size_t *sizes;
    reid_prediction *predictions;
    reid_prediction sentinel[2];
    size_t count, classes, len = 0, i, j, per;
    if (argc < 4) {
        fprintf(stderr, "usage: classify CLASSIFIER.onnx REID_MODEL.onnx IMAGE...\n");
        return 2;
    }
    if (reid_classifier_new(argv[1], NULL, &classifier) != REID_OK) {
        char message[512];
        reid_last_error_message(message, sizeof message, NULL);
        fprintf(stderr, "reid_classifier_new: %s\n", message);
        return 1;
    }
    classes = reid_classifier_num_classes(classifier);
    printf("classes %zu multilabel %d\n", classes, reid_classifier_is_multilabel(classifier));
    for (i = 0; i < classes; ++i) {
        char name[64];
        CHECK(reid_classifier_class_name(classifier, i, name, sizeof name, &len) == REID_OK);
        CHECK(len == strlen(name));
        printf("class %zu %s\n", i, name);
    }
    {
        char tiny[2] = {'x', 'y'};
        CHECK(reid_classifier_class_name(classifier, 0, tiny, sizeof tiny, &len) ==
              REID_BUFFER_TOO_SMALL);
        CHECK(len == 3 && tiny[0] == 'x');
        CHECK(reid_classifier_class_name(classifier, classes, tiny, sizeof tiny, &len) ==
              REID_INVALID_ARGUMENT);
    }
    CHECK(reid_classifier_num_classes(NULL) == 0);
    CHECK(reid_classifier_is_multilabel(NULL) == -1);

    count = (size_t)argc - 3;
    images = calloc(count, sizeof *images);
    sizes = calloc(count, sizeof *sizes);
    for (i = 0; i < count; ++i) {
        images[i] = read_file(argv[3 + i], &sizes[i]);
        if (!images[i]) {
            fprintf(stderr, "cannot read %s\n", argv[3 + i]);
            return 1;
        }
    }
    per = classes < 3 ? classes : 3;
    predictions = calloc(count * per, sizeof *predictions);
    CHECK(reid_classifier_classify_encoded(classifier, images, sizes, count, 3, predictions,
                                           count * per, &len) == REID_OK);
    CHECK(len == count * per);
    for (i = 0; i < count; ++i) {
        printf("image %zu:", i);
        for (j = 0; j < per; ++j) {
            const reid_prediction *p = &predictions[i * per + j];
            printf(" %d %.5f", p->class_index, p->score);
            CHECK(p->score >= 0.0f && p->score <= 1.0f);
            if (j > 0) CHECK(p->score <= predictions[i * per + j - 1].score);
        }
        printf("\n");
    }

    /* Error paths leave the output untouched. */
    memset(sentinel, 0x5a, sizeof sentinel);
    len = 0;
    CHECK(reid_classifier_classify_encoded(classifier, images, sizes, count, 3, sentinel, 2,
                                           &len) == REID_BUFFER_TOO_SMALL);
    CHECK(len == count * per);
    CHECK(((unsigned char *)sentinel)[0] == 0x5a);
    CHECK(reid_classifier_classify_encoded(classifier, images, sizes, count, 0, predictions,
                                           count * per, &len) == REID_INVALID_ARGUMENT);
    CHECK(reid_classifier_classify_encoded(classifier, NULL, sizes, count, 3, predictions,
                                           count * per, &len) == REID_INVALID_ARGUMENT);
    CHECK(reid_classifier_classify_encoded(NULL, images, sizes, count, 3, predictions,
                                           count * per, &len) == REID_INVALID_ARGUMENT);
    {
        const unsigned char junk[4] = {1, 2, 3, 4};
        const unsigned char *bad[1] = {junk};
        size_t bad_size[1] = {sizeof junk};
        CHECK(reid_classifier_classify_encoded(classifier, bad, bad_size, 1, 3, predictions,
                                               count * per, &len) == REID_BAD_IMAGE);
    }
    CHECK(reid_classifier_new(argv[2], NULL, &wrong) == REID_INVALID_ARGUMENT);
    CHECK(wrong == NULL);
    CHECK(reid_classifier_new(NULL, NULL, &wrong) == REID_INVALID_ARGUMENT);

    reid_classifier_free(classifier);
    reid_classifier_free(NULL);
    for (i = 0; i < count; ++i) free((void *)images[i]);
    free(images);
    free(sizes);
    free(predictions);
    printf("classify: %d failures\n", failures);
    return failures ? 1 : 0;
}
