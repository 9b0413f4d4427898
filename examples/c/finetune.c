/*
 * Finetuning from C, end to end: start from a torchreid checkpoint, add a folder of labelled
 * images (train + held-out query / gallery), evaluate, train with a progress callback,
 * evaluate again, save a checkpoint, export ONNX, and embed an image with the new model.
 *
 *   finetune WEIGHTS.pth.tar DATASET_ROOT WORK_DIR IMAGE
 *
 * DATASET_ROOT holds train/, query/ and gallery/ with one folder per identity, image names
 * starting with the camera number (3_0001.jpg). Build: cc finetune.c $(pkg-config --cflags --libs reid)
 */
#include <reid.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Prints one line per epoch; returning non-zero would cancel the run. */
static int32_t on_progress(void *user_data, const reid_progress *p) {
    int *epochs_seen = user_data;
    if (p->end_of_epoch) {
        (*epochs_seen)++;
        printf("epoch %u/%u: loss %.3f, accuracy %.2f, learning rate %.1e\n", p->epoch,
               p->epochs, p->loss, p->accuracy, p->learning_rate);
    }
    return 0;
}

int main(int argc, char **argv) {
    reid_finetuner *job = NULL;
    reid_extractor_options *options = NULL;
    reid_extractor *extractor = NULL;
    float map = 0, rank1 = 0, *embedding = NULL;
    size_t added = 0, len = 0, i;
    int failed = 0, epochs_seen = 0;
    char path[4096];
    double norm = 0;

    if (argc != 5) {
        fprintf(stderr, "usage: %s WEIGHTS DATASET_ROOT WORK_DIR IMAGE\n", argv[0]);
        return 2;
    }
    TRY("creating the job", reid_finetuner_new("osnet_x0_25", argv[1], argv[3], &job));
    TRY("setting epochs", reid_finetuner_set_epochs(job, 2));
    TRY("setting training", reid_finetuner_set_training(job, 8, 0.003, 64, 32));
    TRY("adding images", reid_finetuner_add_folder(job, argv[2], &added));
    printf("added %zu images\n", added);

    TRY("evaluating", reid_finetuner_evaluate(job, &map, &rank1));
    printf("before: mAP %.1f%%, Rank-1 %.1f%%\n", map * 100, rank1 * 100);
    TRY("training", reid_finetuner_run(job, on_progress, &epochs_seen));
    TRY("evaluating", reid_finetuner_evaluate(job, &map, &rank1));
    printf("after %d epochs: mAP %.1f%%, Rank-1 %.1f%%\n", epochs_seen, map * 100, rank1 * 100);

    snprintf(path, sizeof path, "%s/finetuned.bpk", argv[3]);
    TRY("saving", reid_finetuner_save(job, path));
    snprintf(path, sizeof path, "%s/finetuned.onnx", argv[3]);
    TRY("exporting", reid_finetuner_export_onnx(job, path));
    printf("saved a checkpoint and %s\n", path);

    /* The new model as an extractor (Burn engine: no native library needed). */
    TRY("options", reid_extractor_options_new(&options));
    TRY("options", reid_extractor_options_set_engine(options, REID_ENGINE_BURN));
    TRY("extractor", reid_finetuner_new_extractor(job, options, &extractor));
    embedding = malloc(reid_extractor_dim(extractor) * sizeof(float));
    TRY("extracting", reid_extractor_extract_files(extractor, (const char *const *)&argv[4], 1,
                                                   embedding, reid_extractor_dim(extractor),
                                                   &len));
    for (i = 0; i < len; i++) norm += (double)embedding[i] * embedding[i];
    printf("embedded %s: %zu floats, norm %.3f\n", argv[4], len, sqrt(norm));

done:
    free(embedding);
    reid_extractor_free(extractor);
    reid_extractor_options_free(options);
    reid_finetuner_free(job);
    return failed;
}
