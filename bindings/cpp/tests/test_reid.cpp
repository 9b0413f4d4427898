// Tests of reid.hpp against the installed SDK: RAII and move semantics, exceptions carrying
// status and message, outputs as values. Built with CMake's find_package(reid) by
// tests/ffi/installed_sdk.rs, which runs it natively and under valgrind.
//
//   test_reid WEIGHTS.pth.tar IMAGES_DIR WORK_DIR
#include <reid.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <type_traits>
#include <vector>

static_assert(!std::is_copy_constructible_v<reid::Extractor>, "handles are move-only");
static_assert(!std::is_copy_assignable_v<reid::Gallery>, "handles are move-only");
static_assert(std::is_nothrow_move_constructible_v<reid::Extractor>, "moves do not throw");
static_assert(std::is_nothrow_move_assignable_v<reid::Gallery>, "moves do not throw");
static_assert(std::is_base_of_v<std::runtime_error, reid::Error>, "Error is an exception");
static_assert(!std::is_copy_constructible_v<reid::Finetuner>, "handles are move-only");

static int failures = 0;
static int checks = 0;

#define CHECK(cond)                                                         \
    do {                                                                    \
        checks++;                                                           \
        if (!(cond)) {                                                      \
            std::fprintf(stderr, "line %d: failed: %s\n", __LINE__, #cond); \
            failures++;                                                     \
        }                                                                   \
    } while (0)

// Runs `body`, which must throw reid::Error with `status` and a message naming `needle`.
template <typename Body>
static void expect_error(int line, reid_status status, const char *needle, Body body) {
    checks++;
    try {
        body();
        std::fprintf(stderr, "line %d: no exception\n", line);
        failures++;
    } catch (const reid::Error &e) {
        if (e.status() != status || std::strstr(e.what(), needle) == nullptr) {
            std::fprintf(stderr, "line %d: got %s\n", line, e.what());
            failures++;
        }
    }
}
#define EXPECT_ERROR(status, needle, ...) expect_error(__LINE__, status, needle, [&] { __VA_ARGS__; })

static std::vector<std::uint8_t> read_file(const std::string &path) {
    std::ifstream f(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

static float norm(reid::FloatView v) {
    double s = 0;
    for (float x : v) s += double(x) * x;
    return float(std::sqrt(s));
}

int main(int argc, char **argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: %s WEIGHTS IMAGES_DIR WORK_DIR\n", argv[0]);
        return 2;
    }
    const std::string weights = argv[1], images = argv[2], work = argv[3];
    const std::string model = work + "/model.onnx";

    CHECK(reid::version() == REID_VERSION_STRING);

    EXPECT_ERROR(REID_UNKNOWN_ARCHITECTURE, "nonet", reid::export_onnx("nonet", weights, model));
    EXPECT_ERROR(REID_IO_ERROR, "nope.pth", reid::export_onnx("osnet_x0_25", work + "/nope.pth", model));
    reid::export_onnx("osnet_x0_25", weights, model, 128, 64, true);

    EXPECT_ERROR(REID_IO_ERROR, "absent.onnx", reid::Extractor(work + "/absent.onnx"));
    EXPECT_ERROR(REID_INVALID_ARGUMENT, "max_batch", reid::ExtractorOptions().max_batch(0));
    EXPECT_ERROR(REID_INVALID_ARGUMENT, "precision",
                 reid::ExtractorOptions().engine(reid::Engine::OpenVino).openvino("CPU", "f64"));
    EXPECT_ERROR(REID_INVALID_ARGUMENT, "rocm",
                 reid::ExtractorOptions().execution_providers("cuda,rocm"));

    reid::ExtractorOptions options;
    options.threads(1, 2).max_batch(4);
    reid::Extractor first(model, options);
    CHECK(first.dim() == 512);
    CHECK(first.input_size() == std::make_pair(std::size_t(128), std::size_t(64)));

    // Moving transfers the handle; the moved-from object holds none.
    reid::Extractor extractor = std::move(first);
    CHECK(extractor.dim() == 512);
    CHECK(first.get() == nullptr);  // NOLINT(bugprone-use-after-move): checked on purpose
    CHECK(first.dim() == 0);
    EXPECT_ERROR(REID_INVALID_HANDLE, "this reid::Extractor was moved from",
                 first.input_size());

    const std::vector<std::string> files = {images + "/person0.jpg", images + "/person1.jpg",
                                            images + "/person2.png"};
    const reid::Embeddings embeddings = extractor.extract_files(files);
    CHECK(embeddings.count() == 3 && embeddings.dim() == 512);
    for (std::size_t i = 0; i < embeddings.count(); i++)
        CHECK(std::fabs(norm(embeddings[i]) - 1.0f) < 1e-4f);

    // A graph taking raw uint8 RGB pixels embeds as the float export does.
    {
        reid_export_options eo = reid_export_options_default();
        eo.height = 128;
        eo.width = 64;
        eo.flags = REID_EXPORT_NORMALIZE;
        eo.input = REID_GRAPH_INPUT_UINT8_RGB;
        const std::string raw_model = work + "/uint8.onnx";
        reid::export_onnx("osnet_x0_25", weights, raw_model, eo);
        const reid::Embeddings raw = reid::Extractor(raw_model).extract_files(files);
        CHECK(std::equal(raw.values().begin(), raw.values().end(), embeddings.values().begin(),
                         [](float a, float b) { return std::fabs(a - b) < 1e-4f; }));
        eo.precision = REID_PRECISION_INT8;
        EXPECT_ERROR(REID_INVALID_ARGUMENT, "calibration",
                     reid::export_onnx("osnet_x0_25", weights, raw_model, eo));
    }

    std::vector<std::vector<std::uint8_t>> encoded;
    for (const auto &f : files) encoded.push_back(read_file(f));
    const reid::Embeddings again = extractor.extract_encoded(encoded);
    CHECK(again.values() == embeddings.values());
    encoded[1].resize(encoded[1].size() / 2);
    EXPECT_ERROR(REID_BAD_IMAGE, "input 1", extractor.extract_encoded(encoded));

    // A frame and boxes: the whole-frame box equals the frame as an image.
    std::vector<std::uint8_t> pixels(40 * 80 * 3);
    for (std::size_t i = 0; i < pixels.size(); i++) pixels[i] = std::uint8_t(i * 31 % 251);
    reid_image frame{pixels.data(), 40, 80, 0, REID_PIXEL_FORMAT_BGR8};
    const reid::Embeddings crops =
        extractor.extract_boxes(frame, {{0, 0, 40, 80}, {5, 5, 20, 40}});
    const reid::Embeddings whole = extractor.extract_images({frame});
    CHECK(crops.count() == 2);
    CHECK(std::equal(whole[0].begin(), whole[0].end(), crops[0].begin()));
    EXPECT_ERROR(REID_BAD_IMAGE, "input 0", extractor.extract_boxes(frame, {{100, 100, 5, 5}}));

    // Gallery: add, search, errors, move, persistence.
    reid::Gallery gallery(extractor.dim());
    const auto ids = gallery.add_batch(embeddings, {10, 11, 12}, {0, 1, 0});
    CHECK(ids.size() == 3 && gallery.size() == 3);
    const auto best = gallery.search(embeddings[1], {2});
    CHECK(best.size() == 2 && best[0].id == ids[1] && best[0].identity == 11);
    reid::SearchOptions other_cameras;
    other_cameras.exclude_camera = 1;
    const auto filtered = gallery.search(embeddings[1], other_cameras);
    CHECK(filtered.size() == 2 && filtered[0].camera == 0 && filtered[1].camera == 0);
    const auto all = gallery.search(embeddings, {1});
    CHECK(all.size() == 3 && all[2].size() == 1 && all[2][0].id == ids[2]);
    EXPECT_ERROR(REID_DIMENSION_MISMATCH, "512", gallery.add(std::vector<float>(7, 1.0f), 1, 0));
    EXPECT_ERROR(REID_NOT_FOUND, "999", gallery.remove(999));
    EXPECT_ERROR(REID_INVALID_ARGUMENT, "one identity",
                 gallery.add_batch(embeddings, {1}, {0}));
    gallery.update(ids[0], embeddings[2], 12, 3);
    const reid::GalleryEntry entry = gallery.get(ids[0]);
    CHECK(entry.identity == 12 && entry.camera == 3 && entry.vector.size() == 512);
    CHECK(std::equal(entry.vector.begin(), entry.vector.end(), embeddings[2].begin(),
                     [](float a, float b) { return std::fabs(a - b) < 1e-6f; }));
    const std::vector<float> as_vector(embeddings[1].begin(), embeddings[1].end());
    gallery.update(ids[0], as_vector, 12, 4);
    CHECK(gallery.get(ids[0]).camera == 4 &&
          std::fabs(gallery.get(ids[0]).vector[7] - as_vector[7]) < 1e-6f);
    EXPECT_ERROR(REID_NOT_FOUND, "999", gallery.get(999));
    CHECK(gallery.contains(ids[0]) && !gallery.contains(999));
    std::vector<std::uint64_t> ascending(ids.begin(), ids.end());
    std::sort(ascending.begin(), ascending.end());
    CHECK(gallery.ids() == ascending);
    CHECK(gallery.count() == gallery.size());
    gallery.bind_model(extractor.fingerprint());
    CHECK(!extractor.calibration());
    EXPECT_ERROR(REID_NOT_FOUND, "reid calibrate", gallery.adopt_calibration(extractor));
    EXPECT_ERROR(REID_MODEL_MISMATCH, "not of model", gallery.bind_model("another-model"));
    gallery.bind_model("another-model", true);

    // Crops kept with the entries: after a model change, re-embedding is one call. Each entry
    // starts with another image's embedding and ends with its own crop's.
    {
        reid::Gallery kept(extractor.dim());
        std::vector<std::uint64_t> kept_ids;
        for (std::size_t i = 0; i < files.size(); i++)
            kept_ids.push_back(kept.add(embeddings[(i + 1) % files.size()], i, 0));
        EXPECT_ERROR(REID_INVALID_ARGUMENT, "keeps no crops",
                     kept.set_crop(kept_ids[0], read_file(files[0])));
        kept.keep_crops(1 << 20);
        for (std::size_t i = 0; i < files.size(); i++)
            kept.set_crop(kept_ids[i], read_file(files[i]));
        CHECK(kept.crop(kept_ids[2]) == read_file(files[2]));
        kept.bind_model("an-older-model");
        CHECK(kept.reembed(extractor) == files.size());
        for (std::size_t i = 0; i < files.size(); i++) {
            const std::vector<float> v = kept.get(kept_ids[i]).vector;
            CHECK(std::equal(v.begin(), v.end(), embeddings[i].begin(),
                             [](float a, float b) { return std::fabs(a - b) < 1e-5f; }));
        }
        EXPECT_ERROR(REID_MODEL_MISMATCH, "not of model", kept.bind_model("an-older-model"));
    }
    CHECK(gallery.metric() == reid::Metric::Cosine);
    CHECK(gallery.remove_identity(12) == 2 && gallery.size() == 1);

    reid::Gallery moved = std::move(gallery);
    CHECK(moved.size() == 1 && gallery.get() == nullptr && gallery.size() == 0);
    EXPECT_ERROR(REID_INVALID_HANDLE, "this reid::Gallery was moved from",
                 gallery.search(embeddings[0]));

    const std::string saved = work + "/saved.reidg";
    moved.save(saved);
    CHECK(reid::Gallery::load(saved).size() == 1);
    const std::string durable = work + "/durable.reidg";
    {
        reid::Gallery g = reid::Gallery::create(durable, 512, reid::Metric::Euclidean);
        g.add_batch(embeddings, {1, 2, 3}, {0, 0, 0});
    }
    CHECK(reid::Gallery::open(durable).size() == 3);
    EXPECT_ERROR(REID_GALLERY_ERROR, "durable.reidg",
                 reid::Gallery::create(durable, 512));
    std::ofstream(work + "/junk.reidg") << "definitely not a gallery file";
    EXPECT_ERROR(REID_GALLERY_ERROR, "junk.reidg", reid::Gallery::open(work + "/junk.reidg"));

    moved.export_npz(work + "/g.npz");
    reid::Gallery imported(512);
    CHECK(imported.import_npz(work + "/g.npz") == 1 && imported.size() == 1);

    // Gallery search options: a time window leaves out entries added without a time.
    {
        reid::SearchOptions window(5);
        window.time_window = std::make_pair(0.0, 1e9);
        CHECK(imported.search(embeddings[0], window).empty());
        const std::uint64_t seen = imported.add(embeddings[1], 8, 2, 100.0, 110.0);
        window.time_window = std::make_pair(105.0, 106.0);
        const std::vector<reid::Match> found = imported.search(embeddings[0], window);
        CHECK(found.size() == 1 && found[0].id == seen);
        EXPECT_ERROR(REID_INVALID_ARGUMENT, "time span",
                     imported.add(embeddings[1], 8, 2, 3.0, 1.0));
        window.time_window = std::make_pair(5.0, 1.0);
        EXPECT_ERROR(REID_INVALID_ARGUMENT, "time span", imported.search(embeddings[0], window));
    }

    // Identity store: the extractor's embeddings of three crops as tracks of three cameras.
    {
        reid::MatchingConfig config;
        config.threshold = 0.99f;
        config.min_transit_seconds = 60.0;
        config.links = {reid_camera_link{0, 1, 0.0}};
        reid::IdentityStore store(512, config);
        const reid::Embeddings first(std::vector<float>(embeddings[0].begin(), embeddings[0].end()), 512);
        const reid::Assignment a = store.observe(0, 1, 0.0, 10.0, first);
        CHECK(a.created && !a.score);
        const reid::Assignment b = store.observe(1, 1, 5.0, 15.0, first);
        CHECK(!b.created && b.identity == a.identity && b.score && *b.score > 0.999f);
        const reid::Assignment c = store.observe(2, 1, 20.0, 30.0, first);
        CHECK(c.created && c.identity != a.identity);
        const reid::Assignment d = store.observe(2, 2, 40.0, 41.0, embeddings, {1.0f, 0.0f, 0.0f});
        CHECK(!d.created && d.identity == c.identity);
        CHECK(store.identity_of(1, 1) == a.identity);
        EXPECT_ERROR(REID_NOT_FOUND, "camera 5", store.identity_of(5, 1));
        const std::vector<reid::Sighting> seen = store.sightings(a.identity);
        CHECK(seen.size() == 2 && seen[0].camera == 0 && seen[1].camera == 1 &&
              seen[1].time_start == 5.0);
        CHECK(store.merge(a.identity, c.identity) == 2 && store.sightings(a.identity).size() == 4);
        CHECK(store.split(2, 2) != a.identity);
        EXPECT_ERROR(REID_INVALID_ARGUMENT, "quality", store.observe(3, 1, 0.0, 1.0, first, {1.0f, 2.0f}));
        config.threshold = 7.0f;
        EXPECT_ERROR(REID_INVALID_ARGUMENT, "threshold", store.configure(config));
        const std::string location = work + "/identities.db";
        {
            reid::IdentityStore durable = reid::IdentityStore::create(location, 512);
            durable.calibrate(embeddings, {1, 1, 2}, 0.5);
            CHECK(durable.observe(0, 9, 0.0, 1.0, first).created);
        }
        CHECK(reid::IdentityStore::open(location).sightings(1).size() == 1);
        CHECK(reid::IdentityStore::open(location).dim() == 512 && store.dim() == 512);
        EXPECT_ERROR(REID_GALLERY_ERROR, "not an identity store", reid::IdentityStore::open(durable));
        reid::IdentityStore gone = std::move(store);
        EXPECT_ERROR(REID_INVALID_HANDLE, "this reid::IdentityStore was moved from", store.identity_of(0, 1));
    }

    // Finetuner: settings, images in, errors out (training itself: examples/c/finetune.c).
    {
        EXPECT_ERROR(REID_UNKNOWN_ARCHITECTURE, "nonet", reid::Finetuner("nonet", weights, work + "/ft"));
        reid::Finetuner job("osnet_x0_25", weights, work + "/ft");
        job.epochs(1).training(8, 0.01, 64, 32);
        EXPECT_ERROR(REID_INVALID_ARGUMENT, "epochs", job.epochs(0));
        job.add_image(frame, 3, 0);
        job.add_encoded(read_file(files[0]), 4, 1, reid::Split::Query);
        CHECK(job.size() == 2);
        EXPECT_ERROR(REID_BAD_IMAGE, "input 0", job.add_encoded({1, 2, 3}, 5, 0));
        EXPECT_ERROR(REID_INVALID_ARGUMENT, "held-out", job.evaluate());
        EXPECT_ERROR(REID_INVALID_ARGUMENT, "batch", job.run([](const reid_progress &) { return true; }));
        // An extractor of the job's (here still the starting) model, independent of the job.
        reid::Extractor from_job = job.new_extractor();
        CHECK(from_job.dim() == 512 && from_job.extract_files(files).count() == 3);
        reid::Finetuner moved = std::move(job);
        CHECK(moved.size() == 2 && job.get() == nullptr);
        EXPECT_ERROR(REID_INVALID_HANDLE, "this reid::Finetuner was moved from", job.epochs(1));
    }

    std::printf("%d checks, %d failures\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
