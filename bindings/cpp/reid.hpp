// reid.hpp: header-only C++17 wrapper of the reid C API (reid.h).
//
// RAII, move-only handles; failures throw reid::Error carrying the status and the library's
// message; outputs are returned as values (Embeddings, std::vector). Thread safety is the C
// API's: Extractor and Gallery may be used from many threads at once, ExtractorOptions by
// one. Link as for the C API (pkg-config reid, or CMake's reid::reid).
#ifndef REID_HPP
#define REID_HPP

#include "reid.h"

#include <cstddef>
#include <exception>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace reid {

/// A failed call: the C status and the library's message.
class Error : public std::runtime_error {
public:
    Error(reid_status status, const std::string &message)
        : std::runtime_error(std::string(reid_status_str(status)) + ": " + message),
          status_(status) {}

    /// The C status code (never REID_OK).
    reid_status status() const noexcept { return status_; }

private:
    reid_status status_;
};

namespace detail {

inline std::string last_message() {
    std::size_t len = 0;
    reid_last_error_message(nullptr, 0, &len);
    std::string message(len + 1, '\0');
    if (reid_last_error_message(&message[0], message.size(), &len) != REID_OK) return {};
    message.resize(len);
    return message;
}

inline void check(reid_status status) {
    if (status != REID_OK) throw Error(status, last_message());
}

/// The handle of a wrapper object, or reid::Error for one that was moved from (the C API
/// would only say "NULL").
template <typename T>
T *live(T *handle, const char *type) {
    if (handle == nullptr)
        throw Error(REID_INVALID_HANDLE, std::string("this ") + type + " was moved from");
    return handle;
}

struct OptionsDeleter {
    void operator()(reid_extractor_options *p) const noexcept { reid_extractor_options_free(p); }
};
struct ExtractorDeleter {
    void operator()(reid_extractor *p) const noexcept { reid_extractor_free(p); }
};
struct GalleryDeleter {
    void operator()(reid_gallery *p) const noexcept { reid_gallery_free(p); }
};
struct FinetunerDeleter {
    void operator()(reid_finetuner *p) const noexcept { reid_finetuner_free(p); }
};
struct ClassifierDeleter {
    void operator()(reid_classifier *p) const noexcept { reid_classifier_free(p); }
};
struct IdentityStoreDeleter {
    void operator()(reid_identity_store *p) const noexcept { reid_identity_store_free(p); }
};

}  // namespace detail

/// The library's version ("MAJOR.MINOR.PATCH"); compare with REID_VERSION_STRING.
inline std::string version() { return reid_version(); }

/// A read-only view of `size` floats (one embedding).
class FloatView {
public:
    FloatView(const float *data, std::size_t size) noexcept : data_(data), size_(size) {}
    const float *data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    const float *begin() const noexcept { return data_; }
    const float *end() const noexcept { return data_ + size_; }
    float operator[](std::size_t i) const noexcept { return data_[i]; }

private:
    const float *data_;
    std::size_t size_;
};

/// `count()` embeddings of `dim()` floats, row-major.
class Embeddings {
public:
    Embeddings(std::vector<float> values, std::size_t dim) : values_(std::move(values)), dim_(dim) {}
    std::size_t count() const noexcept { return dim_ == 0 ? 0 : values_.size() / dim_; }
    std::size_t dim() const noexcept { return dim_; }
    /// Embedding `i` (unchecked).
    FloatView row(std::size_t i) const noexcept { return {values_.data() + i * dim_, dim_}; }
    FloatView operator[](std::size_t i) const noexcept { return row(i); }
    /// All values, row-major.
    const std::vector<float> &values() const noexcept { return values_; }

private:
    std::vector<float> values_;
    std::size_t dim_;
};

/// Runtimes (see reid_engine).
enum class Engine : std::int32_t {
    OnnxRuntime = REID_ENGINE_ONNXRUNTIME,
    Burn = REID_ENGINE_BURN,
    OpenVino = REID_ENGINE_OPENVINO,
};
/// Channel orders (see reid_channel_order).
enum class ChannelOrder : std::int32_t { Rgb = REID_CHANNEL_ORDER_RGB, Bgr = REID_CHANNEL_ORDER_BGR };
/// Gallery metrics (see reid_metric).
enum class Metric : std::int32_t { Cosine = REID_METRIC_COSINE, Euclidean = REID_METRIC_EUCLIDEAN };

/// Options of an Extractor; setters chain. Defaults as reid_extractor_options_new.
class ExtractorOptions {
public:
    ExtractorOptions() {
        reid_extractor_options *raw = nullptr;
        detail::check(reid_extractor_options_new(&raw));
        handle_.reset(raw);
    }
    ExtractorOptions &engine(Engine e) {
        detail::check(reid_extractor_options_set_engine(handle(), static_cast<std::int32_t>(e)));
        return *this;
    }
    ExtractorOptions &ort_library(const std::string &path) {
        detail::check(reid_extractor_options_set_ort_library(handle(), path.c_str()));
        return *this;
    }
    /// The OpenVINO engine's device ("CPU", "GPU", "AUTO", …), precision hint ("f32", "bf16",
    /// "f16"), performance hint ("latency", "throughput"; empty: the device's default) and
    /// library (empty: found).
    ExtractorOptions &openvino(const std::string &device, const std::string &precision = "f32",
                               const std::string &hint = "", const std::string &library = "") {
        detail::check(reid_extractor_options_set_openvino(
            handle(), device.c_str(), precision.c_str(), hint.empty() ? nullptr : hint.c_str(),
            library.empty() ? nullptr : library.c_str()));
        return *this;
    }
    /// ONNX Runtime execution providers before the CPU ("cuda:0,tensorrt", …), TensorRT's
    /// engine cache folder (empty: none), and whether the CPU fallback is refused.
    ExtractorOptions &execution_providers(const std::string &providers,
                                          const std::string &tensorrt_cache = "",
                                          bool required = false) {
        detail::check(reid_extractor_options_set_execution_providers(
            handle(), providers.c_str(), tensorrt_cache.empty() ? nullptr : tensorrt_cache.c_str(),
            required));
        return *this;
    }
    ExtractorOptions &threads(std::size_t per_session, std::size_t sessions) {
        detail::check(reid_extractor_options_set_threads(handle(), per_session, sessions));
        return *this;
    }
    ExtractorOptions &max_batch(std::size_t n) {
        detail::check(reid_extractor_options_set_max_batch(handle(), n));
        return *this;
    }
    ExtractorOptions &input_size(std::size_t height, std::size_t width) {
        detail::check(reid_extractor_options_set_input_size(handle(), height, width));
        return *this;
    }
    ExtractorOptions &channel_order(ChannelOrder order) {
        detail::check(
            reid_extractor_options_set_channel_order(handle(), static_cast<std::int32_t>(order)));
        return *this;
    }
    ExtractorOptions &normalization(float scale, const float (&mean)[3], const float (&stddev)[3]) {
        detail::check(reid_extractor_options_set_normalization(handle(), scale, mean, stddev));
        return *this;
    }
    ExtractorOptions &normalize(bool on) {
        detail::check(reid_extractor_options_set_normalize(handle(), on ? 1 : 0));
        return *this;
    }
    ExtractorOptions &device(const std::string &name) {
        detail::check(reid_extractor_options_set_device(handle(), name.c_str()));
        return *this;
    }
    ExtractorOptions &architecture(const std::string &name) {
        detail::check(reid_extractor_options_set_architecture(handle(), name.c_str()));
        return *this;
    }
    /// The C handle (owned by this object).
    reid_extractor_options *get() const noexcept { return handle_.get(); }

private:
    reid_extractor_options *handle() const { return detail::live(handle_.get(), "reid::ExtractorOptions"); }
    std::unique_ptr<reid_extractor_options, detail::OptionsDeleter> handle_;
};

/// Images in, embeddings out. Thread-safe.
class Extractor {
public:
    /// Loads `model` (see reid_extractor_new).
    explicit Extractor(const std::string &model) : Extractor(model, nullptr) {}
    Extractor(const std::string &model, const ExtractorOptions &options)
        : Extractor(model, &options) {}

    std::size_t dim() const noexcept { return reid_extractor_dim(get()); }

    /// Where the model runs: ONNX Runtime's execution provider in use, "openvino:DEVICE" or
    /// "burn".
    std::string execution_provider() const {
        char buf[128] = {0};
        detail::check(reid_extractor_execution_provider(handle(), buf, sizeof buf, nullptr));
        return buf;
    }

    /// The model's fingerprint (64 hex digits), for Gallery::bind_model.
    std::string fingerprint() const {
        char buf[65] = {0};
        detail::check(reid_extractor_fingerprint(handle(), buf, sizeof buf, nullptr));
        return buf;
    }

    /// The threshold calibrated for the model (`reid calibrate`), if it carries one.
    std::optional<float> calibration() const {
        float threshold = 0;
        const reid_status status =
            reid_extractor_calibration(handle(), &threshold, nullptr, nullptr);
        if (status == REID_NOT_FOUND) return std::nullopt;
        detail::check(status);
        return threshold;
    }

    /// (height, width) of the model input.
    std::pair<std::size_t, std::size_t> input_size() const {
        std::size_t h = 0, w = 0;
        detail::check(reid_extractor_input_size(handle(), &h, &w));
        return {h, w};
    }

    Embeddings extract_files(const std::vector<std::string> &paths) const {
        std::vector<const char *> raw;
        raw.reserve(paths.size());
        for (const auto &p : paths) raw.push_back(p.c_str());
        return run(paths.size(), [&](float *out, std::size_t cap, std::size_t *len) {
            return reid_extractor_extract_files(handle(), raw.data(), raw.size(), out, cap, len);
        });
    }

    Embeddings extract_encoded(const std::vector<std::vector<std::uint8_t>> &images) const {
        std::vector<const std::uint8_t *> data;
        std::vector<std::size_t> sizes;
        for (const auto &image : images) {
            data.push_back(image.data());
            sizes.push_back(image.size());
        }
        return run(images.size(), [&](float *out, std::size_t cap, std::size_t *len) {
            return reid_extractor_extract_encoded(handle(), data.data(), sizes.data(), data.size(),
                                                  out, cap, len);
        });
    }

    Embeddings extract_images(const std::vector<reid_image> &images) const {
        return run(images.size(), [&](float *out, std::size_t cap, std::size_t *len) {
            return reid_extractor_extract_images(handle(), images.data(), images.size(), out, cap,
                                                 len);
        });
    }

    /// One embedding per box of `frame`, in order.
    Embeddings extract_boxes(const reid_image &frame, const std::vector<reid_box> &boxes) const {
        return run(boxes.size(), [&](float *out, std::size_t cap, std::size_t *len) {
            return reid_extractor_extract_boxes(handle(), &frame, boxes.data(), boxes.size(), out,
                                                cap, len);
        });
    }

    /// One embedding for a tracklet (one tracked object's crops), pooled by `pooling`.
    Embeddings extract_tracklet(const std::vector<reid_image> &images,
                                reid_pooling pooling = REID_POOLING_AVG) const {
        return run(1, [&](float *out, std::size_t cap, std::size_t *len) {
            return reid_extractor_extract_tracklet(handle(), images.data(), images.size(),
                                                   pooling, out, cap, len);
        });
    }

    /// The C handle (owned by this object).
    reid_extractor *get() const noexcept { return handle_.get(); }

private:
    Extractor(const std::string &model, const ExtractorOptions *options) {
        reid_extractor *raw = nullptr;
        detail::check(reid_extractor_new(model.c_str(), options ? options->get() : nullptr, &raw));
        handle_.reset(raw);
    }

    template <typename Call>
    Embeddings run(std::size_t count, Call call) const {
        const std::size_t d = dim();
        std::vector<float> values(count * d);
        std::size_t len = 0;
        detail::check(call(values.data(), values.size(), &len));
        return Embeddings(std::move(values), d);
    }

    friend class Finetuner;
    explicit Extractor(reid_extractor *raw) : handle_(raw) {}
    reid_extractor *handle() const { return detail::live(handle_.get(), "reid::Extractor"); }
    std::unique_ptr<reid_extractor, detail::ExtractorDeleter> handle_;
};

/// One search result.
using Match = reid_match;

/// What a search returns (see reid_search_options).
struct SearchOptions {
    /// The `k` best matches, no filters (converts from a number: `search(query, 5)`).
    SearchOptions(std::size_t k_ = 10) : k(k_) {}  // NOLINT(google-explicit-constructor)

    std::size_t k;
    /// Minimum similarity (cosine) or maximum squared distance (euclidean).
    std::optional<float> min_score;
    bool group_by_identity = false;
    std::optional<std::int32_t> exclude_camera;
    /// The gallery's calibrated threshold (Gallery::calibrate) as the minimum score.
    bool calibrated = false;
    /// Only entries seen between these two times (seconds, the gallery's clock).
    std::optional<std::pair<double, double>> time_window;

    reid_search_options to_c() const noexcept {
        reid_search_options o = reid_search_options_default();
        o.k = k;
        if (min_score) {
            o.flags |= REID_SEARCH_MIN_SCORE;
            o.min_score = *min_score;
        }
        if (group_by_identity) o.flags |= REID_SEARCH_GROUP_BY_IDENTITY;
        if (exclude_camera) {
            o.flags |= REID_SEARCH_EXCLUDE_CAMERA;
            o.exclude_camera = *exclude_camera;
        }
        if (calibrated) o.flags |= REID_SEARCH_CALIBRATED;
        if (time_window) {
            o.flags |= REID_SEARCH_TIME_WINDOW;
            o.time_from = time_window->first;
            o.time_to = time_window->second;
        }
        return o;
    }
};

/// One entry of a gallery (see Gallery::get).
struct GalleryEntry {
    std::vector<float> vector;
    std::uint64_t identity;
    std::int32_t camera;
};

/// Labelled embeddings and their search; in memory or a durable file. Thread-safe.
class Gallery {
public:
    /// An empty in-memory gallery.
    explicit Gallery(std::size_t dim, Metric metric = Metric::Cosine) {
        reid_gallery *raw = nullptr;
        detail::check(reid_gallery_new(dim, static_cast<std::int32_t>(metric), &raw));
        handle_.reset(raw);
    }
    /// A new durable gallery file (which must not exist).
    static Gallery create(const std::string &path, std::size_t dim, Metric metric = Metric::Cosine) {
        reid_gallery *raw = nullptr;
        detail::check(
            reid_gallery_create(path.c_str(), dim, static_cast<std::int32_t>(metric), &raw));
        return Gallery(raw);
    }
    /// An existing durable gallery file; later changes are committed to it.
    static Gallery open(const std::string &path) {
        reid_gallery *raw = nullptr;
        detail::check(reid_gallery_open(path.c_str(), &raw));
        return Gallery(raw);
    }
    /// An in-memory copy of a gallery file.
    static Gallery load(const std::string &path) {
        reid_gallery *raw = nullptr;
        detail::check(reid_gallery_load(path.c_str(), &raw));
        return Gallery(raw);
    }

    std::size_t size() const noexcept { return reid_gallery_len(get()); }
    std::size_t dim() const noexcept { return reid_gallery_dim(get()); }
    Metric metric() const { return static_cast<Metric>(reid_gallery_metric(handle())); }
    /// Whether entry `id` is in the gallery.
    bool contains(std::uint64_t id) const { return reid_gallery_contains(handle(), id) == 1; }

    /// Adds one embedding; returns its id.
    std::uint64_t add(FloatView vector, std::uint64_t identity, std::int32_t camera) {
        std::uint64_t id = 0;
        detail::check(
            reid_gallery_add(handle(), vector.data(), vector.size(), identity, camera, &id));
        return id;
    }
    std::uint64_t add(const std::vector<float> &vector, std::uint64_t identity,
                      std::int32_t camera) {
        return add(FloatView(vector.data(), vector.size()), identity, camera);
    }
    /// Adds one embedding seen from `start` to `end` (seconds; see SearchOptions::time_window).
    std::uint64_t add(FloatView vector, std::uint64_t identity, std::int32_t camera, double start,
                      double end) {
        std::uint64_t id = 0;
        detail::check(reid_gallery_add_timed(handle(), vector.data(), vector.size(), identity,
                                             camera, start, end, &id));
        return id;
    }

    /// Adds every row of `embeddings` (all or nothing); returns their ids.
    std::vector<std::uint64_t> add_batch(const Embeddings &embeddings,
                                         const std::vector<std::uint64_t> &identities,
                                         const std::vector<std::int32_t> &cameras) {
        const std::size_t n = embeddings.count();
        if (identities.size() != n || cameras.size() != n)
            throw Error(REID_INVALID_ARGUMENT, "one identity and one camera per embedding");
        std::vector<std::uint64_t> ids(n);
        detail::check(reid_gallery_add_batch(handle(), embeddings.values().data(), n,
                                             embeddings.dim(), nullptr, identities.data(),
                                             cameras.data(), ids.data()));
        return ids;
    }

    void update(std::uint64_t id, FloatView vector, std::uint64_t identity, std::int32_t camera) {
        detail::check(
            reid_gallery_update(handle(), id, vector.data(), vector.size(), identity, camera));
    }
    void update(std::uint64_t id, const std::vector<float> &vector, std::uint64_t identity,
                std::int32_t camera) {
        update(id, FloatView(vector.data(), vector.size()), identity, camera);
    }

    /// Entry `id`: its embedding (as stored: unit length in a cosine gallery), identity and
    /// camera; reid::Error with REID_NOT_FOUND when there is none.
    GalleryEntry get(std::uint64_t id) const {
        GalleryEntry entry{std::vector<float>(dim()), 0, 0};
        detail::check(reid_gallery_get(handle(), id, entry.vector.data(), entry.vector.size(),
                                       nullptr, &entry.identity, &entry.camera));
        return entry;
    }
    /// The ids of every entry, ascending (a snapshot).
    /// Binds the gallery to the model whose embeddings it holds (Extractor::fingerprint);
    /// another model's throws reid::Error with REID_MODEL_MISMATCH once it holds entries,
    /// unless `replace`.
    void bind_model(const std::string &fingerprint, bool replace = false) {
        detail::check(reid_gallery_bind_model(handle(), fingerprint.c_str(), replace ? 1 : 0));
    }

    /// Keeps the threshold calibrated for `extractor`'s model as the gallery's (for
    /// SearchOptions::calibrated); reid::Error REID_NOT_FOUND when it carries none.
    void adopt_calibration(const Extractor &extractor) {
        detail::check(reid_gallery_adopt_calibration(handle(), extractor.get()));
    }

    /// Keeps each entry's crop from now on (set_crop), each at most `max_bytes`, so that
    /// reembed can embed them again with a new model.
    void keep_crops(std::size_t max_bytes) {
        detail::check(reid_gallery_keep_crops(handle(), max_bytes));
    }

    /// Gives entry `id` its crop: the encoded image (JPEG, PNG, BMP or WebP) its embedding
    /// was computed from.
    void set_crop(std::uint64_t id, const std::vector<std::uint8_t> &crop) {
        detail::check(reid_gallery_set_crop(handle(), id, crop.data(), crop.size()));
    }

    /// The crop kept with entry `id` (empty if it has none).
    std::vector<std::uint8_t> crop(std::uint64_t id) const {
        std::size_t size = 0;
        const reid_status status = reid_gallery_crop(get(), id, nullptr, 0, &size);
        if (status != REID_BUFFER_TOO_SMALL) {
            detail::check(status);
            return {};
        }
        std::vector<std::uint8_t> crop(size);
        detail::check(reid_gallery_crop(get(), id, crop.data(), crop.size(), &size));
        return crop;
    }

    /// Embeds every entry's kept crop with `extractor`'s model and, at once, replaces every
    /// embedding, binds the gallery to that model and takes its calibration; returns the
    /// number of entries re-embedded. Nothing changes on failure.
    std::size_t reembed(const Extractor &extractor) {
        std::size_t count = 0;
        detail::check(reid_gallery_reembed(handle(), extractor.get(), &count));
        return count;
    }

    /// Number of entries, or reid::Error when a database gallery's server cannot say.
    std::size_t count() const {
        std::size_t n = 0;
        detail::check(reid_gallery_count(handle(), &n));
        return n;
    }

    std::vector<std::uint64_t> ids() const {
        std::vector<std::uint64_t> out;
        std::size_t len = 0;
        for (;;) {
            const reid_status status = reid_gallery_ids(handle(), out.data(), out.size(), &len);
            // Another thread may add entries between the two calls: ask again.
            if (status != REID_BUFFER_TOO_SMALL) {
                detail::check(status);
                out.resize(len);
                return out;
            }
            out.resize(len);
        }
    }
    void remove(std::uint64_t id) { detail::check(reid_gallery_remove(handle(), id)); }
    /// Removes every entry of `identity`; returns how many.
    std::size_t remove_identity(std::uint64_t identity) {
        std::size_t removed = 0;
        detail::check(reid_gallery_remove_identity(handle(), identity, &removed));
        return removed;
    }

    /// The best matches of one embedding, best first.
    std::vector<Match> search(FloatView query, const SearchOptions &options = {}) const {
        const reid_search_options o = options.to_c();
        std::vector<Match> matches(o.k);
        std::size_t len = 0;
        detail::check(reid_gallery_search(handle(), query.data(), query.size(), &o, matches.data(),
                                          matches.size(), &len));
        matches.resize(len);
        return matches;
    }

    /// The best matches of every row of `queries`.
    std::vector<std::vector<Match>> search(const Embeddings &queries,
                                           const SearchOptions &options = {}) const {
        const reid_search_options o = options.to_c();
        const std::size_t n = queries.count();
        std::vector<Match> flat(n * o.k);
        std::vector<std::size_t> counts(n);
        detail::check(reid_gallery_search_batch(handle(), queries.values().data(), n, queries.dim(),
                                                &o, flat.data(), flat.size(), counts.data()));
        std::vector<std::vector<Match>> results(n);
        for (std::size_t q = 0; q < n; q++)
            results[q].assign(flat.begin() + static_cast<std::ptrdiff_t>(q * o.k),
                              flat.begin() + static_cast<std::ptrdiff_t>(q * o.k + counts[q]));
        return results;
    }

    /// Writes the gallery to `path` atomically.
    void save(const std::string &path) const {
        detail::check(reid_gallery_save(handle(), path.c_str()));
    }
    void export_npz(const std::string &path) const {
        detail::check(reid_gallery_export_npz(handle(), path.c_str()));
    }
    /// Adds the entries of a .npz; returns how many.
    std::size_t import_npz(const std::string &path) {
        std::size_t added = 0;
        detail::check(reid_gallery_import_npz(handle(), path.c_str(), &added));
        return added;
    }

    /// The C handle (owned by this object).
    reid_gallery *get() const noexcept { return handle_.get(); }

private:
    explicit Gallery(reid_gallery *raw) : handle_(raw) {}
    reid_gallery *handle() const { return detail::live(handle_.get(), "reid::Gallery"); }
    std::unique_ptr<reid_gallery, detail::GalleryDeleter> handle_;
};

/// How an identity store matches tracks (see reid_matching_config).
struct MatchingConfig {
    /// The least cosine similarity to join an identity; none: the store's calibration.
    std::optional<float> threshold;
    /// Identities tried per new track.
    std::size_t candidates = reid_matching_config_default().candidates;
    /// Seconds at least between sightings by two cameras no link names (0: no topology).
    double min_transit_seconds = 0.0;
    /// Neighbouring cameras with their own least transit time.
    std::vector<reid_camera_link> links;

    /// The C view of this config (valid while this object lives).
    reid_matching_config to_c() const noexcept {
        reid_matching_config c = reid_matching_config_default();
        if (threshold) {
            c.flags |= REID_MATCH_THRESHOLD;
            c.threshold = *threshold;
        }
        c.candidates = candidates;
        c.min_transit_seconds = min_transit_seconds;
        c.links = links.empty() ? nullptr : links.data();
        c.link_count = links.size();
        return c;
    }
};

/// What the store made of a track.
struct Assignment {
    std::uint64_t identity;
    /// Whether the identity was created for this track.
    bool created;
    /// The similarity to the identity joined, when it joined one by similarity.
    std::optional<float> score;
};

/// Where and when an identity was seen (see reid_sighting).
using Sighting = reid_sighting;

/// Global identities for the tracks of many cameras; in memory, a file or a database.
/// Thread-safe.
class IdentityStore {
public:
    /// An identity store in memory.
    explicit IdentityStore(std::size_t dim, const MatchingConfig &config = {}) {
        const reid_matching_config c = config.to_c();
        reid_identity_store *raw = nullptr;
        detail::check(reid_identity_store_new(dim, &c, &raw));
        handle_.reset(raw);
    }
    /// A new durable store at `location` (a file, or a postgres:// URL).
    static IdentityStore create(const std::string &location, std::size_t dim,
                                const MatchingConfig &config = {}) {
        const reid_matching_config c = config.to_c();
        reid_identity_store *raw = nullptr;
        detail::check(reid_identity_store_create(location.c_str(), dim, &c, &raw));
        return IdentityStore(raw);
    }
    /// An existing durable store, with the configuration it keeps.
    static IdentityStore open(const std::string &location) {
        reid_identity_store *raw = nullptr;
        detail::check(reid_identity_store_open(location.c_str(), &raw));
        return IdentityStore(raw);
    }

    /// The embedding dimension.
    std::size_t dim() const noexcept { return reid_identity_store_dim(get()); }

    /// Replaces the matching configuration.
    void configure(const MatchingConfig &config) {
        const reid_matching_config c = config.to_c();
        detail::check(reid_identity_store_configure(handle(), &c));
    }

    /// Finds and keeps the threshold for `target_far` from labelled embeddings; returns it
    /// with its true-accept rate.
    std::pair<float, double> calibrate(const Embeddings &vectors,
                                       const std::vector<std::uint64_t> &identities,
                                       double target_far) {
        if (identities.size() != vectors.count())
            throw Error(REID_INVALID_ARGUMENT, "one identity per embedding");
        float threshold = 0;
        double tar = 0;
        detail::check(reid_identity_store_calibrate(handle(), vectors.values().data(),
                                                    vectors.count(), vectors.dim(),
                                                    identities.data(), target_far, &threshold,
                                                    &tar));
        return {threshold, tar};
    }

    /// Reports track `track` of `camera`, seen from `start` to `end` (seconds), with its crops'
    /// embeddings and optional per-crop quality weights.
    Assignment observe(std::int32_t camera, std::uint64_t track, double start, double end,
                       const Embeddings &crops, const std::vector<float> &quality = {}) {
        if (!quality.empty() && quality.size() != crops.count())
            throw Error(REID_INVALID_ARGUMENT, "one quality weight per crop");
        const reid_track t{camera,         track,       start,
                           end,            crops.values().data(), crops.count(),
                           crops.dim(),    quality.empty() ? nullptr : quality.data()};
        reid_assignment a{};
        detail::check(reid_identity_store_observe(handle(), &t, &a));
        return {a.identity, a.created != 0,
                a.matched != 0 ? std::optional<float>(a.score) : std::nullopt};
    }

    /// The global identity of a reported track; reid::Error REID_NOT_FOUND if never reported.
    std::uint64_t identity_of(std::int32_t camera, std::uint64_t track) const {
        std::uint64_t identity = 0;
        detail::check(reid_identity_store_identity_of(handle(), camera, track, &identity));
        return identity;
    }

    /// Where and when `identity` was seen, in time order.
    std::vector<Sighting> sightings(std::uint64_t identity) const {
        std::vector<Sighting> out;
        std::size_t len = 0;
        for (;;) {
            const reid_status status =
                reid_identity_store_sightings(handle(), identity, out.data(), out.size(), &len);
            // Another thread may report meanwhile: ask again.
            if (status != REID_BUFFER_TOO_SMALL) {
                detail::check(status);
                out.resize(len);
                return out;
            }
            out.resize(len);
        }
    }

    /// Makes `absorbed` part of `kept`; returns how many reports moved.
    std::size_t merge(std::uint64_t kept, std::uint64_t absorbed) {
        std::size_t moved = 0;
        detail::check(reid_identity_store_merge(handle(), kept, absorbed, &moved));
        return moved;
    }

    /// Gives a track a new identity of its own; returns it.
    std::uint64_t split(std::int32_t camera, std::uint64_t track) {
        std::uint64_t identity = 0;
        detail::check(reid_identity_store_split(handle(), camera, track, &identity));
        return identity;
    }

    /// The C handle (owned by this object).
    reid_identity_store *get() const noexcept { return handle_.get(); }

private:
    explicit IdentityStore(reid_identity_store *raw) : handle_(raw) {}
    reid_identity_store *handle() const {
        return detail::live(handle_.get(), "reid::IdentityStore");
    }
    std::unique_ptr<reid_identity_store, detail::IdentityStoreDeleter> handle_;
};

/// Where an added image goes (see reid_split).
enum class Split : std::int32_t {
    Train = REID_SPLIT_TRAIN,
    Query = REID_SPLIT_QUERY,
    Gallery = REID_SPLIT_GALLERY
};

/// Finetuning inside the application (see reid_finetuner_*). Single-owner.
class Finetuner {
public:
    /// A job for `architecture` starting from `weights` (empty: random initialization),
    /// working in `work_dir`.
    Finetuner(const std::string &architecture, const std::string &weights,
              const std::string &work_dir) {
        reid_finetuner *raw = nullptr;
        detail::check(reid_finetuner_new(architecture.c_str(),
                                         weights.empty() ? nullptr : weights.c_str(),
                                         work_dir.c_str(), &raw));
        handle_.reset(raw);
    }

    Finetuner &epochs(std::size_t n) {
        detail::check(reid_finetuner_set_epochs(handle(), n));
        return *this;
    }
    /// Batch size, learning rate and input size; 0 keeps a value.
    Finetuner &training(std::size_t batch_size, double learning_rate, std::size_t height = 0,
                        std::size_t width = 0) {
        detail::check(
            reid_finetuner_set_training(handle(), batch_size, learning_rate, height, width));
        return *this;
    }
    void add_image(const reid_image &image, std::uint64_t identity, std::int32_t camera,
                   Split split = Split::Train) {
        detail::check(reid_finetuner_add_image(handle(), &image, identity, camera,
                                               static_cast<std::int32_t>(split)));
    }
    void add_encoded(const std::vector<std::uint8_t> &bytes, std::uint64_t identity,
                     std::int32_t camera, Split split = Split::Train) {
        detail::check(reid_finetuner_add_encoded(handle(), bytes.data(), bytes.size(), identity,
                                                 camera, static_cast<std::int32_t>(split)));
    }
    /// Adds a folder-per-identity dataset; returns how many images.
    std::size_t add_folder(const std::string &root) {
        std::size_t added = 0;
        detail::check(reid_finetuner_add_folder(handle(), root.c_str(), &added));
        return added;
    }
    std::size_t size() const noexcept { return reid_finetuner_len(get()); }

    /// Trains; `progress` (optional) returns false to cancel (then reid::Error with
    /// REID_CANCELLED is thrown). An exception thrown by `progress` cancels the run and is
    /// rethrown here.
    void run(const std::function<bool(const reid_progress &)> &progress = {}) {
        struct Context {
            const std::function<bool(const reid_progress &)> *progress;
            std::exception_ptr error;
        } context{&progress, nullptr};
        auto trampoline = [](void *user, const reid_progress *p) -> std::int32_t {
            auto *c = static_cast<Context *>(user);
            try {
                return (*c->progress)(*p) ? 0 : 1;
            } catch (...) {
                c->error = std::current_exception();
                return 1;
            }
        };
        const reid_status status =
            reid_finetuner_run(handle(), progress ? +trampoline : nullptr, &context);
        if (context.error) std::rethrow_exception(context.error);
        detail::check(status);
    }

    /// (mAP, Rank-1) on the held-out images.
    std::pair<float, float> evaluate() {
        float map = 0, rank1 = 0;
        detail::check(reid_finetuner_evaluate(handle(), &map, &rank1));
        return {map, rank1};
    }
    void save(const std::string &checkpoint) {
        detail::check(reid_finetuner_save(handle(), checkpoint.c_str()));
    }
    void export_onnx(const std::string &path) {
        detail::check(reid_finetuner_export_onnx(handle(), path.c_str()));
    }
    /// An extractor of the current model (trained, else the starting one), independent of
    /// the job.
    Extractor new_extractor() { return new_extractor(nullptr); }
    Extractor new_extractor(const ExtractorOptions &options) { return new_extractor(&options); }
    reid_finetuner *get() const noexcept { return handle_.get(); }

private:
    Extractor new_extractor(const ExtractorOptions *options) {
        reid_extractor *raw = nullptr;
        detail::check(reid_finetuner_new_extractor(handle(), options ? options->get() : nullptr,
                                                   &raw));
        return Extractor(raw);
    }
    reid_finetuner *handle() const { return detail::live(handle_.get(), "reid::Finetuner"); }
    std::unique_ptr<reid_finetuner, detail::FinetunerDeleter> handle_;
};

/// One predicted class (index and probability).
using Prediction = reid_prediction;

/// Images in, top-k classes out, for classification models. Thread-safe.
class Classifier {
public:
    /// Loads `model` (see reid_classifier_new).
    explicit Classifier(const std::string &model) : Classifier(model, nullptr) {}
    Classifier(const std::string &model, const ExtractorOptions &options)
        : Classifier(model, &options) {}

    std::size_t num_classes() const noexcept { return reid_classifier_num_classes(get()); }
    bool multilabel() const noexcept { return reid_classifier_is_multilabel(get()) == 1; }

    /// The name of class `index` (empty when the model names none).
    std::string class_name(std::size_t index) const {
        std::size_t len = 0;
        reid_classifier_class_name(handle(), index, nullptr, 0, &len);
        std::string name(len + 1, '\0');
        detail::check(reid_classifier_class_name(handle(), index, &name[0], name.size(), &len));
        name.resize(len);
        return name;
    }

    /// The `k` most probable classes of each file, best first.
    std::vector<std::vector<Prediction>> classify_files(const std::vector<std::string> &paths,
                                                        std::size_t k) const {
        std::vector<const char *> raw;
        raw.reserve(paths.size());
        for (const auto &p : paths) raw.push_back(p.c_str());
        return run(paths.size(), k, [&](Prediction *out, std::size_t cap, std::size_t *len) {
            return reid_classifier_classify_files(handle(), raw.data(), raw.size(), k, out, cap, len);
        });
    }

    /// The `k` most probable classes of each encoded image, best first.
    std::vector<std::vector<Prediction>> classify_encoded(
        const std::vector<std::vector<std::uint8_t>> &images, std::size_t k) const {
        std::vector<const std::uint8_t *> data;
        std::vector<std::size_t> sizes;
        for (const auto &image : images) {
            data.push_back(image.data());
            sizes.push_back(image.size());
        }
        return run(images.size(), k, [&](Prediction *out, std::size_t cap, std::size_t *len) {
            return reid_classifier_classify_encoded(handle(), data.data(), sizes.data(),
                                                    images.size(), k, out, cap, len);
        });
    }

    /// The C handle (owned by this object).
    reid_classifier *get() const noexcept { return handle_.get(); }

private:
    Classifier(const std::string &model, const ExtractorOptions *options) {
        reid_classifier *raw = nullptr;
        detail::check(reid_classifier_new(model.c_str(), options ? options->get() : nullptr, &raw));
        handle_.reset(raw);
    }

    template <typename Call>
    std::vector<std::vector<Prediction>> run(std::size_t count, std::size_t k, Call call) const {
        const std::size_t per = k < num_classes() ? k : num_classes();
        std::vector<Prediction> flat(count * per);
        std::size_t len = 0;
        detail::check(call(flat.data(), flat.size(), &len));
        std::vector<std::vector<Prediction>> rows;
        for (std::size_t i = 0; i < count; ++i)
            rows.emplace_back(flat.begin() + i * per, flat.begin() + (i + 1) * per);
        return rows;
    }

    reid_classifier *handle() const { return detail::live(handle_.get(), "reid::Classifier"); }
    std::unique_ptr<reid_classifier, detail::ClassifierDeleter> handle_;
};

/// Exports a model to ONNX (see reid_export_onnx). An empty `architecture` means the one a
/// reid checkpoint records; height and width 0 mean the architecture's default.
inline void export_onnx(const std::string &architecture, const std::string &weights,
                        const std::string &output, std::size_t height = 0, std::size_t width = 0,
                        bool normalize = false) {
    detail::check(reid_export_onnx(architecture.empty() ? nullptr : architecture.c_str(),
                                   weights.c_str(), output.c_str(), height, width,
                                   normalize ? REID_EXPORT_NORMALIZE : 0u));
}

/// Exports with `reid_export_options` (start from `reid_export_options_default()`): what the
/// graph takes (float, or uint8 RGB / BGR pixels in NCHW / NHWC) and the precision (INT8,
/// calibrated and checked on `options.calibration`; one losing more than `max_map_drop` mAP
/// points throws reid::Error with the report and writes nothing).
inline void export_onnx(const std::string &architecture, const std::string &weights,
                        const std::string &output, const reid_export_options &options) {
    detail::check(reid_export_onnx_ex(architecture.empty() ? nullptr : architecture.c_str(),
                                      weights.c_str(), output.c_str(), &options));
}

}  // namespace reid

#endif  // REID_HPP
