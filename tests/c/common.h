/* Helpers shared by the C test programs. */
#ifndef REID_TEST_COMMON_H
#define REID_TEST_COMMON_H

#include <stdio.h>
#include <stdlib.h>

/* The whole file in a malloc'd buffer (NULL if unreadable); its size in *size. */
static unsigned char *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    unsigned char *data;
    long n;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    data = malloc((size_t)n + 1);
    if (fread(data, 1, (size_t)n, f) != (size_t)n) {
        free(data);
        data = NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return data;
}

#endif
