#!/usr/bin/env python3
"""Extract embeddings, enrol them in a gallery file, search it, reopen it: the C example
(examples/c/extract_and_search.c) in Python, through the binding in bindings/python.

    REID_LIBRARY=target/release/libreid.so PYTHONPATH=bindings/python \
        python examples/python/extract_and_search.py MODEL.onnx GALLERY_FILE IMAGE...
"""

import sys

import reid


def main(argv):
    if len(argv) < 4:
        print(f"usage: {argv[0]} MODEL.onnx GALLERY_FILE IMAGE...", file=sys.stderr)
        return 2
    model, gallery_file, images = argv[1], argv[2], argv[3:]
    print(f"reid {reid.version()}")
    try:
        # 1. Embed the images (ONNX Runtime; engine="burn" needs no native runtime).
        with reid.Extractor(model) as extractor:
            embeddings = extractor.extract_files(images)
        print(f"extracted {len(images)} embeddings of {embeddings.shape[1]} floats")

        # 2. Enrol them in a new gallery file; every change is committed to the file.
        with reid.Gallery.create(gallery_file, embeddings.shape[1]) as gallery:
            gallery.add_batch(
                embeddings,
                identities=list(range(len(images))),
                cameras=[i % 2 for i in range(len(images))],
            )
            # 3. Search: the 3 best matches of each image.
            for i, matches in enumerate(gallery.search_batch(embeddings, k=3)):
                found = "".join(f"  identity {m.identity} ({m.score:.3f})" for m in matches)
                print(f"query {i}:{found}")

        # 4. Reopen the file and search it again.
        with reid.Gallery.open(gallery_file) as gallery:
            best = gallery.search(embeddings[0], k=1)[0]
            print(
                f"reopened {gallery_file}: {len(gallery)} entries; "
                f"best match of image 0: identity {best.identity} ({best.score:.3f})"
            )
    except reid.ReidError as e:
        print(f"failed: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
