// The C++ wrapper end to end: extract embeddings from image files, enrol them in a durable
// gallery, search it, reopen the file and search again.
//
//   gallery_demo MODEL.onnx GALLERY_FILE IMAGE...
#include <reid.hpp>

#include <cstdio>
#include <string>
#include <vector>

int main(int argc, char **argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s MODEL.onnx GALLERY_FILE IMAGE...\n", argv[0]);
        return 2;
    }
    try {
        const std::vector<std::string> images(argv + 3, argv + argc);
        std::printf("reid %s\n", reid::version().c_str());

        reid::Extractor extractor(argv[1]);
        const reid::Embeddings embeddings = extractor.extract_files(images);
        std::printf("extracted %zu embeddings of %zu floats\n", embeddings.count(),
                    embeddings.dim());

        std::vector<std::uint64_t> identities;
        std::vector<std::int32_t> cameras;
        for (std::size_t i = 0; i < images.size(); i++) {
            identities.push_back(i);
            cameras.push_back(std::int32_t(i % 2));
        }
        {
            reid::Gallery gallery = reid::Gallery::create(argv[2], embeddings.dim());
            gallery.add_batch(embeddings, identities, cameras);
            const auto results = gallery.search(embeddings, {3});
            for (std::size_t q = 0; q < results.size(); q++) {
                std::printf("query %zu:", q);
                for (const reid::Match &m : results[q])
                    std::printf("  identity %llu (%.3f)", (unsigned long long)m.identity, m.score);
                std::printf("\n");
            }
        }  // the gallery file is closed here; every change was already committed

        const reid::Gallery reopened = reid::Gallery::open(argv[2]);
        const reid::Match best = reopened.search(embeddings[0], {1}).at(0);
        std::printf("reopened %s: %zu entries; best match of image 0: identity %llu (%.3f)\n",
                    argv[2], reopened.size(), (unsigned long long)best.identity, best.score);
    } catch (const reid::Error &e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
