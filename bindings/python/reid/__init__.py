"""Python binding of the reid SDK over its C ABI (``include/reid.h``), with ctypes and NumPy.

The shared library is found from ``REID_LIBRARY`` (a path to ``libreid.so``), else the
system's library path (``ctypes.util.find_library("reid")``, e.g. after
``bindings/install.sh --prefix /usr/local``). Every failing call raises :class:`ReidError`
carrying the C status name and the library's message; nothing is left half-done on failure.

    import reid
    ex = reid.Extractor("osnet_x0_25.onnx")
    gallery = reid.Gallery(ex.dim)
    gallery.add_batch(ex.extract_files(["a.jpg", "b.jpg"]), identities=[1, 2])
    print(gallery.search(ex.extract_files(["query.jpg"])[0], k=5))

Thread safety follows the C ABI: extractors, classifiers and galleries may be shared between
threads (ctypes releases the GIL during each call); a finetuner belongs to one thread.
"""

import ctypes
import ctypes.util
import os
from collections import namedtuple

import numpy as np

__all__ = [
    "ReidError",
    "Extractor",
    "Classifier",
    "Gallery",
    "IdentityStore",
    "Finetuner",
    "Match",
    "Assignment",
    "Sighting",
    "Prediction",
    "Progress",
    "export_onnx",
    "set_log_callback",
    "LOG_LEVELS",
    "version",
    "library",
]

_c_float_p = ctypes.POINTER(ctypes.c_float)
_c_size_p = ctypes.POINTER(ctypes.c_size_t)
_c_u64_p = ctypes.POINTER(ctypes.c_uint64)
_c_i32_p = ctypes.POINTER(ctypes.c_int32)


class _Image(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.POINTER(ctypes.c_uint8)),
        ("width", ctypes.c_size_t),
        ("height", ctypes.c_size_t),
        ("stride", ctypes.c_size_t),
        ("format", ctypes.c_int32),
    ]


class _Box(ctypes.Structure):
    _fields_ = [(n, ctypes.c_float) for n in ("x", "y", "width", "height")]


class _SearchOptions(ctypes.Structure):
    _fields_ = [
        ("k", ctypes.c_size_t),
        ("min_score", ctypes.c_float),
        ("exclude_camera", ctypes.c_int32),
        ("flags", ctypes.c_uint32),
        ("time_from", ctypes.c_double),
        ("time_to", ctypes.c_double),
    ]


class _ExportOptions(ctypes.Structure):
    _fields_ = [
        ("height", ctypes.c_size_t),
        ("width", ctypes.c_size_t),
        ("flags", ctypes.c_uint32),
        ("input", ctypes.c_int32),
        ("layout", ctypes.c_int32),
        ("precision", ctypes.c_int32),
        ("calibration", ctypes.c_char_p),
        ("calibration_method", ctypes.c_char_p),
        ("calibration_images", ctypes.c_size_t),
        ("max_map_drop", ctypes.c_double),
    ]


class _Match(ctypes.Structure):
    _fields_ = [
        ("id", ctypes.c_uint64),
        ("identity", ctypes.c_uint64),
        ("camera", ctypes.c_int32),
        ("score", ctypes.c_float),
    ]


class _CameraLink(ctypes.Structure):
    _fields_ = [
        ("camera_a", ctypes.c_int32),
        ("camera_b", ctypes.c_int32),
        ("min_seconds", ctypes.c_double),
    ]


class _MatchingConfig(ctypes.Structure):
    _fields_ = [
        ("threshold", ctypes.c_float),
        ("flags", ctypes.c_uint32),
        ("candidates", ctypes.c_size_t),
        ("min_transit_seconds", ctypes.c_double),
        ("links", ctypes.POINTER(_CameraLink)),
        ("link_count", ctypes.c_size_t),
    ]


class _Track(ctypes.Structure):
    _fields_ = [
        ("camera", ctypes.c_int32),
        ("track", ctypes.c_uint64),
        ("time_start", ctypes.c_double),
        ("time_end", ctypes.c_double),
        ("embeddings", ctypes.POINTER(ctypes.c_float)),
        ("crop_count", ctypes.c_size_t),
        ("dim", ctypes.c_size_t),
        ("quality", ctypes.POINTER(ctypes.c_float)),
    ]


class _Assignment(ctypes.Structure):
    _fields_ = [
        ("identity", ctypes.c_uint64),
        ("entry", ctypes.c_uint64),
        ("score", ctypes.c_float),
        ("created", ctypes.c_int32),
        ("matched", ctypes.c_int32),
    ]


class _Sighting(ctypes.Structure):
    _fields_ = [
        ("camera", ctypes.c_int32),
        ("track", ctypes.c_uint64),
        ("time_start", ctypes.c_double),
        ("time_end", ctypes.c_double),
        ("entry", ctypes.c_uint64),
    ]


class _Prediction(ctypes.Structure):
    _fields_ = [("class_index", ctypes.c_int32), ("score", ctypes.c_float)]


class _Progress(ctypes.Structure):
    _fields_ = [
        ("epoch", ctypes.c_uint32),
        ("epochs", ctypes.c_uint32),
        ("step", ctypes.c_uint32),
        ("steps", ctypes.c_uint32),
        ("loss", ctypes.c_float),
        ("accuracy", ctypes.c_float),
        ("learning_rate", ctypes.c_double),
        ("map", ctypes.c_float),
        ("rank1", ctypes.c_float),
        ("end_of_epoch", ctypes.c_int32),
    ]


_ProgressCallback = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.POINTER(_Progress))
_LogCallback = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int32, ctypes.c_char_p)

#: One search result: entry id, identity, camera and score (cosine similarity, higher is
#: closer; or squared euclidean distance, lower is closer).
Match = namedtuple("Match", "id identity camera score")
#: What an identity store made of a track: its global identity, whether the identity was
#: created for it, the similarity to the identity it joined (``None`` when it joined none).
Assignment = namedtuple("Assignment", "identity created score entry")
#: Where and when an identity was seen: camera, track id, first and last time.
Sighting = namedtuple("Sighting", "camera track start end")
#: One classification result: class index, class name and probability.
Prediction = namedtuple("Prediction", "index name score")
#: What a finetuning progress callback receives (``map`` / ``rank1`` NaN when not evaluated).
Progress = namedtuple(
    "Progress", "epoch epochs step steps loss accuracy learning_rate map rank1 end_of_epoch"
)

_ENGINES = {"onnxruntime": 0, "burn": 1, "openvino": 2}
_CHANNEL_ORDERS = {"rgb": 0, "bgr": 1}
_PIXEL_FORMATS = {"rgb": 0, "bgr": 1, "rgba": 2, "bgra": 3, "gray": 4}
_METRICS = {"cosine": 0, "euclidean": 1}
_SPLITS = {"train": 0, "query": 1, "gallery": 2}
_SEARCH_MIN_SCORE, _SEARCH_GROUP_BY_IDENTITY, _SEARCH_EXCLUDE_CAMERA, _SEARCH_CALIBRATED = 1, 2, 4, 8
_SEARCH_TIME_WINDOW = 16
_MATCH_THRESHOLD = 1
_BUFFER_TOO_SMALL = 2
_NOT_FOUND = 12

# (name, result type, argument types) of every function used.
_SIGNATURES = [
    ("reid_version", ctypes.c_char_p, []),
    ("reid_status_str", ctypes.c_char_p, [ctypes.c_int32]),
    ("reid_last_error_message", ctypes.c_int32, [ctypes.c_char_p, ctypes.c_size_t, _c_size_p]),
    ("reid_extractor_options_new", ctypes.c_int32, [ctypes.POINTER(ctypes.c_void_p)]),
    ("reid_extractor_options_free", None, [ctypes.c_void_p]),
    ("reid_extractor_options_set_engine", ctypes.c_int32, [ctypes.c_void_p, ctypes.c_int32]),
    (
        "reid_extractor_options_set_openvino",
        ctypes.c_int32,
        [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p],
    ),
    ("reid_extractor_options_set_ort_library", ctypes.c_int32, [ctypes.c_void_p, ctypes.c_char_p]),
    (
        "reid_extractor_options_set_threads",
        ctypes.c_int32,
        [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t],
    ),
    ("reid_extractor_options_set_max_batch", ctypes.c_int32, [ctypes.c_void_p, ctypes.c_size_t]),
    (
        "reid_extractor_options_set_input_size",
        ctypes.c_int32,
        [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t],
    ),
    ("reid_extractor_options_set_channel_order", ctypes.c_int32, [ctypes.c_void_p, ctypes.c_int32]),
    (
        "reid_extractor_options_set_normalization",
        ctypes.c_int32,
        [ctypes.c_void_p, ctypes.c_float, _c_float_p, _c_float_p],
    ),
    ("reid_extractor_options_set_normalize", ctypes.c_int32, [ctypes.c_void_p, ctypes.c_int32]),
    ("reid_extractor_options_set_device", ctypes.c_int32, [ctypes.c_void_p, ctypes.c_char_p]),
    ("reid_extractor_options_set_architecture", ctypes.c_int32, [ctypes.c_void_p, ctypes.c_char_p]),
    (
        "reid_extractor_new",
        ctypes.c_int32,
        [ctypes.c_char_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)],
    ),
    ("reid_extractor_free", None, [ctypes.c_void_p]),
    ("reid_extractor_dim", ctypes.c_size_t, [ctypes.c_void_p]),
    (
        "reid_extractor_fingerprint",
        ctypes.c_int32,
        [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, _c_size_p],
    ),
    (
        "reid_extractor_execution_provider",
        ctypes.c_int32,
        [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, _c_size_p],
    ),
    (
        "reid_extractor_options_set_execution_providers",
        ctypes.c_int32,
        [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_bool],
    ),
    ("reid_gallery_bind_model", ctypes.c_int32, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32]),
    (
        "reid_extractor_calibration",
        ctypes.c_int32,
        [
            ctypes.c_void_p,
            _c_float_p,
            ctypes.POINTER(ctypes.c_double),
            ctypes.POINTER(ctypes.c_double),
        ],
    ),
    ("reid_gallery_adopt_calibration", ctypes.c_int32, [ctypes.c_void_p, ctypes.c_void_p]),
    ("reid_gallery_keep_crops", ctypes.c_int32, [ctypes.c_void_p, ctypes.c_size_t]),
    (
        "reid_gallery_set_crop",
        ctypes.c_int32,
        [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_char_p, ctypes.c_size_t],
    ),
    (
        "reid_gallery_crop",
        ctypes.c_int32,
        [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_char_p, ctypes.c_size_t, _c_size_p],
    ),
    ("reid_gallery_reembed", ctypes.c_int32, [ctypes.c_void_p, ctypes.c_void_p, _c_size_p]),
    ("reid_extractor_input_size", ctypes.c_int32, [ctypes.c_void_p, _c_size_p, _c_size_p]),
    (
        "reid_extractor_extract_encoded",
        ctypes.c_int32,
        [
            ctypes.c_void_p,
            ctypes.POINTER(ctypes.c_char_p),
            _c_size_p,
            ctypes.c_size_t,
            _c_float_p,
            ctypes.c_size_t,
            _c_size_p,
        ],
    ),
    (
        "reid_extractor_extract_files",
        ctypes.c_int32,
        [
            ctypes.c_void_p,
            ctypes.POINTER(ctypes.c_char_p),
            ctypes.c_size_t,
            _c_float_p,
            ctypes.c_size_t,
            _c_size_p,
        ],
    ),
    (
        "reid_extractor_extract_images",
        ctypes.c_int32,
        [
            ctypes.c_void_p,
            ctypes.POINTER(_Image),
            ctypes.c_size_t,
            _c_float_p,
            ctypes.c_size_t,
            _c_size_p,
        ],
    ),
    (
        "reid_extractor_extract_tracklet",
        ctypes.c_int32,
        [
            ctypes.c_void_p,
            ctypes.POINTER(_Image),
            ctypes.c_size_t,
            ctypes.c_int32,
            _c_float_p,
            ctypes.c_size_t,
            _c_size_p,
        ],
    ),
    (
        "reid_extractor_extract_boxes",
        ctypes.c_int32,
        [
            ctypes.c_void_p,
            ctypes.POINTER(_Image),
            ctypes.POINTER(_Box),
            ctypes.c_size_t,
            _c_float_p,
            ctypes.c_size_t,
            _c_size_p,
        ],
    ),
    (
        "reid_classifier_new",
        ctypes.c_int32,
        [ctypes.c_char_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)],
    ),
    ("reid_classifier_free", None, [ctypes.c_void_p]),
    ("reid_classifier_num_classes", ctypes.c_size_t, [ctypes.c_void_p]),
    ("reid_classifier_is_multilabel", ctypes.c_int32, [ctypes.c_void_p]),
    (
        "reid_classifier_class_name",
        ctypes.c_int32,
        [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t, _c_size_p],
    ),
    (
        "reid_classifier_classify_encoded",
        ctypes.c_int32,
        [
            ctypes.c_void_p,
            ctypes.POINTER(ctypes.c_char_p),
            _c_size_p,
            ctypes.c_size_t,
            ctypes.c_size_t,
            ctypes.POINTER(_Prediction),
            ctypes.c_size_t,
            _c_size_p,
        ],
    ),
    (
        "reid_classifier_classify_files",
        ctypes.c_int32,
        [
            ctypes.c_void_p,
            ctypes.POINTER(ctypes.c_char_p),
            ctypes.c_size_t,
            ctypes.c_size_t,
            ctypes.POINTER(_Prediction),
            ctypes.c_size_t,
            _c_size_p,
        ],
    ),
    (
        "reid_classifier_classify_images",
        ctypes.c_int32,
        [
            ctypes.c_void_p,
            ctypes.POINTER(_Image),
            ctypes.c_size_t,
            ctypes.c_size_t,
            ctypes.POINTER(_Prediction),
            ctypes.c_size_t,
            _c_size_p,
        ],
    ),
    (
        "reid_export_onnx",
        ctypes.c_int32,
        [
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_size_t,
            ctypes.c_uint32,
        ],
    ),
    ("reid_search_options_default", _SearchOptions, []),
    ("reid_export_options_default", _ExportOptions, []),
    (
        "reid_export_onnx_ex",
        ctypes.c_int32,
        [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(_ExportOptions)],
    ),
    ("reid_matching_config_default", _MatchingConfig, []),
    (
        "reid_identity_store_new",
        ctypes.c_int32,
        [ctypes.c_size_t, ctypes.POINTER(_MatchingConfig), ctypes.POINTER(ctypes.c_void_p)],
    ),
    (
        "reid_identity_store_create",
        ctypes.c_int32,
        [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.POINTER(_MatchingConfig),
            ctypes.POINTER(ctypes.c_void_p),
        ],
    ),
    (
        "reid_identity_store_open",
        ctypes.c_int32,
        [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)],
    ),
    ("reid_identity_store_free", None, [ctypes.c_void_p]),
    ("reid_identity_store_dim", ctypes.c_size_t, [ctypes.c_void_p]),
    (
        "reid_identity_store_configure",
        ctypes.c_int32,
        [ctypes.c_void_p, ctypes.POINTER(_MatchingConfig)],
    ),
    (
        "reid_identity_store_calibrate",
        ctypes.c_int32,
        [
            ctypes.c_void_p,
            _c_float_p,
            ctypes.c_size_t,
            ctypes.c_size_t,
            _c_u64_p,
            ctypes.c_double,
            _c_float_p,
            ctypes.POINTER(ctypes.c_double),
        ],
    ),
    (
        "reid_identity_store_observe",
        ctypes.c_int32,
        [ctypes.c_void_p, ctypes.POINTER(_Track), ctypes.POINTER(_Assignment)],
    ),
    (
        "reid_identity_store_identity_of",
        ctypes.c_int32,
        [ctypes.c_void_p, ctypes.c_int32, ctypes.c_uint64, _c_u64_p],
    ),
    (
        "reid_identity_store_sightings",
        ctypes.c_int32,
        [ctypes.c_void_p, ctypes.c_uint64, ctypes.POINTER(_Sighting), ctypes.c_size_t, _c_size_p],
    ),
    (
        "reid_identity_store_merge",
        ctypes.c_int32,
        [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64, _c_size_p],
    ),
    (
        "reid_identity_store_split",
        ctypes.c_int32,
        [ctypes.c_void_p, ctypes.c_int32, ctypes.c_uint64, _c_u64_p],
    ),
    (
        "reid_gallery_new",
        ctypes.c_int32,
        [ctypes.c_size_t, ctypes.c_int32, ctypes.POINTER(ctypes.c_void_p)],
    ),
    (
        "reid_gallery_create",
        ctypes.c_int32,
        [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int32, ctypes.POINTER(ctypes.c_void_p)],
    ),
    ("reid_gallery_open", ctypes.c_int32, [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]),
    ("reid_gallery_load", ctypes.c_int32, [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]),
    ("reid_gallery_save", ctypes.c_int32, [ctypes.c_void_p, ctypes.c_char_p]),
    ("reid_gallery_free", None, [ctypes.c_void_p]),
    ("reid_gallery_len", ctypes.c_size_t, [ctypes.c_void_p]),
    ("reid_gallery_count", ctypes.c_int32, [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t)]),
    ("reid_gallery_dim", ctypes.c_size_t, [ctypes.c_void_p]),
    (
        "reid_gallery_add_batch",
        ctypes.c_int32,
        [
            ctypes.c_void_p,
            _c_float_p,
            ctypes.c_size_t,
            ctypes.c_size_t,
            _c_u64_p,
            _c_u64_p,
            _c_i32_p,
            _c_u64_p,
        ],
    ),
    (
        "reid_gallery_add_timed",
        ctypes.c_int32,
        [
            ctypes.c_void_p,
            _c_float_p,
            ctypes.c_size_t,
            ctypes.c_uint64,
            ctypes.c_int32,
            ctypes.c_double,
            ctypes.c_double,
            _c_u64_p,
        ],
    ),
    (
        "reid_gallery_update",
        ctypes.c_int32,
        [
            ctypes.c_void_p,
            ctypes.c_uint64,
            _c_float_p,
            ctypes.c_size_t,
            ctypes.c_uint64,
            ctypes.c_int32,
        ],
    ),
    ("reid_gallery_remove", ctypes.c_int32, [ctypes.c_void_p, ctypes.c_uint64]),
    (
        "reid_gallery_remove_identity",
        ctypes.c_int32,
        [ctypes.c_void_p, ctypes.c_uint64, _c_size_p],
    ),
    (
        "reid_gallery_get",
        ctypes.c_int32,
        [
            ctypes.c_void_p,
            ctypes.c_uint64,
            _c_float_p,
            ctypes.c_size_t,
            _c_size_p,
            _c_u64_p,
            _c_i32_p,
        ],
    ),
    (
        "reid_gallery_ids",
        ctypes.c_int32,
        [ctypes.c_void_p, _c_u64_p, ctypes.c_size_t, _c_size_p],
    ),
    (
        "reid_gallery_calibrate",
        ctypes.c_int32,
        [
            ctypes.c_void_p,
            _c_float_p,
            ctypes.c_size_t,
            ctypes.c_size_t,
            _c_u64_p,
            ctypes.c_double,
            _c_float_p,
            ctypes.POINTER(ctypes.c_double),
        ],
    ),
    ("reid_gallery_metric", ctypes.c_int32, [ctypes.c_void_p]),
    ("reid_gallery_contains", ctypes.c_int32, [ctypes.c_void_p, ctypes.c_uint64]),
    (
        "reid_logging_set_callback",
        ctypes.c_int32,
        [_LogCallback, ctypes.c_void_p, ctypes.c_int32],
    ),
    (
        "reid_gallery_search_batch",
        ctypes.c_int32,
        [
            ctypes.c_void_p,
            _c_float_p,
            ctypes.c_size_t,
            ctypes.c_size_t,
            ctypes.POINTER(_SearchOptions),
            ctypes.POINTER(_Match),
            ctypes.c_size_t,
            _c_size_p,
        ],
    ),
    ("reid_gallery_export_npz", ctypes.c_int32, [ctypes.c_void_p, ctypes.c_char_p]),
    ("reid_gallery_import_npz", ctypes.c_int32, [ctypes.c_void_p, ctypes.c_char_p, _c_size_p]),
    (
        "reid_finetuner_new",
        ctypes.c_int32,
        [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)],
    ),
    ("reid_finetuner_free", None, [ctypes.c_void_p]),
    ("reid_finetuner_set_epochs", ctypes.c_int32, [ctypes.c_void_p, ctypes.c_size_t]),
    (
        "reid_finetuner_set_training",
        ctypes.c_int32,
        [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_double, ctypes.c_size_t, ctypes.c_size_t],
    ),
    (
        "reid_finetuner_add_encoded",
        ctypes.c_int32,
        [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint64,
            ctypes.c_int32,
            ctypes.c_int32,
        ],
    ),
    (
        "reid_finetuner_add_image",
        ctypes.c_int32,
        [ctypes.c_void_p, ctypes.POINTER(_Image), ctypes.c_uint64, ctypes.c_int32, ctypes.c_int32],
    ),
    ("reid_finetuner_add_folder", ctypes.c_int32, [ctypes.c_void_p, ctypes.c_char_p, _c_size_p]),
    ("reid_finetuner_len", ctypes.c_size_t, [ctypes.c_void_p]),
    ("reid_finetuner_run", ctypes.c_int32, [ctypes.c_void_p, _ProgressCallback, ctypes.c_void_p]),
    ("reid_finetuner_evaluate", ctypes.c_int32, [ctypes.c_void_p, _c_float_p, _c_float_p]),
    ("reid_finetuner_save", ctypes.c_int32, [ctypes.c_void_p, ctypes.c_char_p]),
    ("reid_finetuner_export_onnx", ctypes.c_int32, [ctypes.c_void_p, ctypes.c_char_p]),
    (
        "reid_finetuner_new_extractor",
        ctypes.c_int32,
        [ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)],
    ),
]

_lib = None


def library():
    """The loaded C library (loaded on first use)."""
    global _lib
    if _lib is None:
        path = os.environ.get("REID_LIBRARY") or ctypes.util.find_library("reid")
        if not path:
            raise OSError(
                "libreid not found: set REID_LIBRARY to the path of libreid.so "
                "or install it (bindings/install.sh)"
            )
        lib = ctypes.CDLL(path)
        for name, restype, argtypes in _SIGNATURES:
            fn = getattr(lib, name)
            fn.restype = restype
            fn.argtypes = argtypes
        _lib = lib
    return _lib


class ReidError(Exception):
    """A failed C call: ``status`` is the C status name (``"REID_BAD_IMAGE"``, …), ``code``
    its number, and the message the library gave."""

    def __init__(self, code, status, message):
        super().__init__(f"{status}: {message}")
        self.code = code
        self.status = status
        self.message = message


def _last_error():
    lib = library()
    needed = ctypes.c_size_t(0)
    lib.reid_last_error_message(None, 0, ctypes.byref(needed))
    buf = ctypes.create_string_buffer(needed.value + 1)
    lib.reid_last_error_message(buf, len(buf), None)
    return buf.value.decode("utf-8", "replace")


def _check(code):
    if code != 0:
        status = library().reid_status_str(code).decode()
        raise ReidError(code, status, _last_error())


def _path(p):
    return os.fsencode(os.fspath(p))


def _paths(paths):
    encoded = [_path(p) for p in paths]
    return (ctypes.c_char_p * len(encoded))(*encoded), encoded


def _encoded(images):
    blobs = [bytes(b) for b in images]
    pointers = (ctypes.c_char_p * len(blobs))(*blobs)
    sizes = (ctypes.c_size_t * len(blobs))(*[len(b) for b in blobs])
    return pointers, sizes, blobs


def _pixel_format(array, fmt):
    if fmt is None:
        fmt = "gray" if array.ndim == 2 else {3: "rgb", 4: "rgba"}.get(array.shape[2])
    if fmt not in _PIXEL_FORMATS:
        raise ValueError(f"pixel format {fmt!r}; one of {sorted(_PIXEL_FORMATS)}")
    channels = 1 if fmt == "gray" else len(fmt)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != channels) or (
        array.ndim == 2 and channels != 1
    ):
        raise ValueError(f"an H x W x {channels} array is needed for {fmt}, got {array.shape}")
    return _PIXEL_FORMATS[fmt]


def _image(array, fmt=None, keep=None):
    """A reid_image view of a uint8 array (H x W x C); `keep` collects what must stay alive."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"images are uint8 arrays, got {array.dtype}")
    code = _pixel_format(array, fmt)
    # Rows may be strided (a crop of a frame); pixels within a row must be packed, and rows
    # must run forwards in memory (a flipped view is copied).
    packed = array.strides[1:] == ((array.shape[2], 1) if array.ndim == 3 else (1,))
    row_bytes = array.shape[1] * (array.shape[2] if array.ndim == 3 else 1)
    if not packed or array.strides[0] < row_bytes:
        array = np.ascontiguousarray(array)
    if keep is not None:
        keep.append(array)
    return _Image(
        array.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)),
        array.shape[1],
        array.shape[0],
        array.strides[0],
        code,
    )


#: Log levels, least severe first (``reid_log_level``).
LOG_LEVELS = ("verbose", "info", "warning", "error", "fatal")
# The ctypes callback in use: it must live as long as the library may call it.
_log_callback = None


def set_log_callback(callback, min_level="warning"):
    """Sends the library's log lines (ONNX Runtime's model warnings, for example) at
    ``min_level`` or above to ``callback(level, message)``, ``level`` one of
    :data:`LOG_LEVELS`; ``None`` stops them (the default: nothing is written anywhere). The
    callback may run on any thread and must not call the library. To use Python's logging::

        log = logging.getLogger("reid")
        levels = {"verbose": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
                  "error": logging.ERROR, "fatal": logging.CRITICAL}
        reid.set_log_callback(lambda level, message: log.log(levels[level], message))
    """
    global _log_callback
    if min_level not in LOG_LEVELS:
        raise ValueError(f"min_level must be one of {LOG_LEVELS}, not {min_level!r}")
    if callback is None:
        _check(library().reid_logging_set_callback(_LogCallback(), None, 0))
        _log_callback = None
        return

    def deliver(_user_data, level, message):
        name = LOG_LEVELS[level] if 0 <= level < len(LOG_LEVELS) else "fatal"
        callback(name, message.decode("utf-8", "replace"))

    c_callback = _LogCallback(deliver)
    _check(library().reid_logging_set_callback(c_callback, None, LOG_LEVELS.index(min_level)))
    _log_callback = c_callback


def version():
    """The library's version string."""
    return library().reid_version().decode()


_GRAPH_INPUTS = {"float": 0, "uint8-rgb": 1, "uint8-bgr": 2}
_LAYOUTS = {"nchw": 0, "nhwc": 1}
_PRECISIONS = {"f32": 0, "int8": 1, "fp16": 2}


def export_onnx(
    architecture,
    weights,
    output,
    height=256,
    width=128,
    normalize=True,
    input="float",
    layout="nchw",
    precision="f32",
    calibration=None,
    calibration_method=None,
    calibration_images=None,
    max_map_drop=None,
    fp16_io=False,
):
    """Exports a model (torchreid weights or a reid checkpoint) to ONNX, atomically.
    ``input``: what the graph takes, "float" or raw pixels "uint8-rgb" / "uint8-bgr" (``layout``
    "nchw" or "nhwc"). ``precision="fp16"`` computes in float16 (``fp16_io``: its input and
    output too), ``precision="int8"`` quantizes it, calibrated on ``calibration`` (a re-id
    dataset in Market-1501's layout); either is checked on that dataset, and a model that loses
    more than ``max_map_drop`` mAP points raises ``ReidError`` with the report, nothing
    written."""
    options = library().reid_export_options_default()
    options.height, options.width = height, width
    options.flags = (1 if normalize else 0) | (2 if fp16_io else 0)
    try:
        options.input = _GRAPH_INPUTS[input]
        options.layout = _LAYOUTS[layout]
        options.precision = _PRECISIONS[precision]
    except KeyError as e:
        raise ValueError(f"unknown export option {e}") from None
    if calibration is not None:
        options.calibration = _path(calibration)
    if calibration_method is not None:
        options.calibration_method = calibration_method.encode()
    if calibration_images is not None:
        options.calibration_images = calibration_images
    if max_map_drop is not None:
        options.max_map_drop = max_map_drop
    _check(
        library().reid_export_onnx_ex(
            architecture.encode() if architecture else None,
            _path(weights),
            _path(output),
            ctypes.byref(options),
        )
    )


class _Options:
    """reid_extractor_options built from keyword arguments."""

    def __init__(
        self,
        engine=None,
        ort_library=None,
        threads=None,
        sessions=1,
        max_batch=None,
        input_size=None,
        channel_order=None,
        scale=None,
        mean=None,
        std=None,
        normalize=None,
        device=None,
        architecture=None,
        openvino=None,
        execution_providers=None,
        tensorrt_cache=None,
        require_provider=False,
    ):
        lib = library()
        self.handle = ctypes.c_void_p()
        _check(lib.reid_extractor_options_new(ctypes.byref(self.handle)))
        try:
            h = self.handle
            if engine is not None:
                if engine not in _ENGINES:
                    raise ValueError(f"engine {engine!r}; one of {sorted(_ENGINES)}")
                _check(lib.reid_extractor_options_set_engine(h, _ENGINES[engine]))
            if ort_library is not None:
                _check(lib.reid_extractor_options_set_ort_library(h, _path(ort_library)))
            if execution_providers is not None:
                _check(lib.reid_extractor_options_set_execution_providers(
                    h, ",".join(execution_providers).encode(),
                    _path(tensorrt_cache) if tensorrt_cache is not None else None,
                    bool(require_provider)))
            if openvino is not None:
                unknown = set(openvino) - {"device", "precision", "hint", "library"}
                if unknown:
                    raise ValueError(f"unknown OpenVINO options {sorted(unknown)}")
                text = lambda key: openvino[key].encode() if openvino.get(key) else None
                library_path = _path(openvino["library"]) if openvino.get("library") else None
                _check(lib.reid_extractor_options_set_openvino(
                    h, text("device"), text("precision"), text("hint"), library_path))
            if threads is not None:
                _check(lib.reid_extractor_options_set_threads(h, threads, sessions))
            if max_batch is not None:
                _check(lib.reid_extractor_options_set_max_batch(h, max_batch))
            if input_size is not None:
                _check(lib.reid_extractor_options_set_input_size(h, *input_size))
            if channel_order is not None:
                if channel_order not in _CHANNEL_ORDERS:
                    raise ValueError(f"channel order {channel_order!r}: rgb or bgr")
                order = _CHANNEL_ORDERS[channel_order]
                _check(lib.reid_extractor_options_set_channel_order(h, order))
            if scale is not None or mean is not None or std is not None:
                m = (ctypes.c_float * 3)(*(mean if mean is not None else (0.485, 0.456, 0.406)))
                s = (ctypes.c_float * 3)(*(std if std is not None else (0.229, 0.224, 0.225)))
                value = 1.0 / 255.0 if scale is None else scale
                _check(lib.reid_extractor_options_set_normalization(h, value, m, s))
            if normalize is not None:
                _check(lib.reid_extractor_options_set_normalize(h, 1 if normalize else 0))
            if device is not None:
                _check(lib.reid_extractor_options_set_device(h, device.encode()))
            if architecture is not None:
                _check(lib.reid_extractor_options_set_architecture(h, architecture.encode()))
        except BaseException:
            self.close()
            raise

    def close(self):
        if self.handle:
            library().reid_extractor_options_free(self.handle)
            self.handle = ctypes.c_void_p()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Handle:
    """Owns one C handle; freed by ``close()``, ``with`` or garbage collection."""

    _free = None

    def __init__(self, handle):
        self._handle = handle

    @property
    def handle(self):
        if not self._handle:
            raise ValueError(f"{type(self).__name__} is closed")
        return self._handle

    def close(self):
        """Frees the C object now (later calls raise ValueError)."""
        if getattr(self, "_handle", None):
            getattr(library(), self._free)(self._handle)
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class Extractor(_Handle):
    """Embeds images with an ONNX model (ONNX Runtime, or OpenVINO with ``engine="openvino"``
    and ``openvino=dict(device=, precision=, hint=, library=)``; ONNX Runtime's execution
    providers with ``execution_providers=["cuda:0", ...]``, ``tensorrt_cache``,
    ``require_provider``) or a reid checkpoint / ONNX
    file (``engine="burn"``). Keyword options as the C options: ``engine``, ``ort_library``,
    ``threads`` + ``sessions``, ``max_batch``, ``input_size=(h, w)``, ``channel_order``
    (``"rgb"`` / ``"bgr"``), ``scale`` / ``mean`` / ``std``, ``normalize``, ``device``,
    ``architecture``. Embeddings come back as float32 arrays ``[count, dim]``."""

    _free = "reid_extractor_free"

    def __init__(self, model_path, **options):
        handle = ctypes.c_void_p()
        with _Options(**options) as opts:
            _check(library().reid_extractor_new(_path(model_path), opts.handle, ctypes.byref(handle)))
        super().__init__(handle)

    @classmethod
    def _adopt(cls, handle):
        self = cls.__new__(cls)
        _Handle.__init__(self, handle)
        return self

    @property
    def dim(self):
        """Embedding dimension."""
        return library().reid_extractor_dim(self.handle)

    @property
    def execution_provider(self):
        """Where the model runs: ONNX Runtime's execution provider in use
        (``CPUExecutionProvider`` when none asked for could be used), ``openvino:DEVICE`` or
        ``burn``."""
        buf = ctypes.create_string_buffer(128)
        _check(library().reid_extractor_execution_provider(self.handle, buf, len(buf), None))
        return buf.value.decode()

    @property
    def fingerprint(self):
        """The model's fingerprint (64 hex digits: its weights, preprocessing and output), for
        :meth:`Gallery.bind_model`."""
        buf = ctypes.create_string_buffer(65)
        _check(library().reid_extractor_fingerprint(self.handle, buf, len(buf), None))
        return buf.value.decode()

    @property
    def calibration(self):
        """The threshold calibrated for the model (``reid calibrate``) as ``(threshold,
        false-accept rate, true-accept rate)``, or ``None`` when it carries none."""
        threshold, far, tar = ctypes.c_float(), ctypes.c_double(), ctypes.c_double()
        code = library().reid_extractor_calibration(
            self.handle, ctypes.byref(threshold), ctypes.byref(far), ctypes.byref(tar)
        )
        if code == _NOT_FOUND:
            return None
        _check(code)
        return threshold.value, far.value, tar.value

    @property
    def input_size(self):
        """(height, width) the model takes."""
        h, w = ctypes.c_size_t(), ctypes.c_size_t()
        _check(library().reid_extractor_input_size(self.handle, ctypes.byref(h), ctypes.byref(w)))
        return h.value, w.value

    def _output(self, count):
        out = np.empty((count, self.dim), dtype=np.float32)
        return out, out.ctypes.data_as(_c_float_p), out.size

    def extract_files(self, paths):
        """Embeddings of image files (JPEG, PNG, BMP, WebP)."""
        paths = list(paths)
        array, _keep = _paths(paths)
        out, ptr, cap = self._output(len(paths))
        _check(library().reid_extractor_extract_files(self.handle, array, len(paths), ptr, cap, None))
        return out

    def extract_encoded(self, images):
        """Embeddings of encoded images (``bytes`` of JPEG, PNG, BMP or WebP files)."""
        pointers, sizes, _keep = _encoded(images)
        out, ptr, cap = self._output(len(sizes))
        _check(
            library().reid_extractor_extract_encoded(
                self.handle, pointers, sizes, len(sizes), ptr, cap, None
            )
        )
        return out

    def extract_images(self, images, pixel_format=None):
        """Embeddings of uint8 pixel arrays (H x W x 3 RGB by default; ``pixel_format``
        ``"bgr"`` for OpenCV frames, ``"rgba"``, ``"bgra"``, ``"gray"`` for H x W)."""
        keep = []
        views = [_image(a, pixel_format, keep) for a in images]
        array = (_Image * len(views))(*views)
        out, ptr, cap = self._output(len(views))
        _check(library().reid_extractor_extract_images(self.handle, array, len(views), ptr, cap, None))
        return out

    def extract_tracklet(self, images, pooling="avg", pixel_format=None):
        """One embedding for a tracklet (one tracked object's crops, as ``extract_images``
        takes them): their embeddings pooled (``"avg"`` or ``"max"``), then normalized."""
        codes = {"avg": 0, "max": 1}
        if pooling not in codes:
            raise ValueError(f"pooling must be avg or max, not {pooling!r}")
        keep = []
        views = [_image(a, pixel_format, keep) for a in images]
        array = (_Image * max(len(views), 1))(*views)
        out, ptr, cap = self._output(1)
        _check(
            library().reid_extractor_extract_tracklet(
                self.handle, array, len(views), codes[pooling], ptr, cap, None
            )
        )
        return out[0]

    def extract_boxes(self, frame, boxes, pixel_format=None):
        """Embeddings of the crops of ``boxes`` (``(x, y, width, height)`` each, clipped to
        the frame) of one frame."""
        keep = []
        view = _image(frame, pixel_format, keep)
        boxes = [tuple(float(v) for v in b) for b in boxes]
        array = (_Box * len(boxes))(*[_Box(*b) for b in boxes])
        out, ptr, cap = self._output(len(boxes))
        _check(
            library().reid_extractor_extract_boxes(
                self.handle, ctypes.byref(view), array, len(boxes), ptr, cap, None
            )
        )
        return out


class Classifier(_Handle):
    """Top-k classes of images from a classification or multi-label model (options as
    :class:`Extractor`). Results: for each image, a list of :data:`Prediction`, best first."""

    _free = "reid_classifier_free"

    def __init__(self, model_path, **options):
        handle = ctypes.c_void_p()
        with _Options(**options) as opts:
            _check(library().reid_classifier_new(_path(model_path), opts.handle, ctypes.byref(handle)))
        super().__init__(handle)
        self.class_names = [self._class_name(i) for i in range(self.num_classes)]

    @property
    def num_classes(self):
        """Number of classes."""
        return library().reid_classifier_num_classes(self.handle)

    @property
    def is_multilabel(self):
        """True when scores are independent per-class probabilities (sigmoid)."""
        return library().reid_classifier_is_multilabel(self.handle) == 1

    def _class_name(self, index):
        lib = library()
        needed = ctypes.c_size_t()
        code = lib.reid_classifier_class_name(self.handle, index, None, 0, ctypes.byref(needed))
        if code not in (0, _BUFFER_TOO_SMALL):
            _check(code)
        buf = ctypes.create_string_buffer(needed.value + 1)
        _check(lib.reid_classifier_class_name(self.handle, index, buf, len(buf), None))
        return buf.value.decode("utf-8", "replace")

    def _results(self, count, k, call):
        k = max(int(k), 1)
        per_image = min(k, self.num_classes)
        out = (_Prediction * (count * per_image))()
        written = ctypes.c_size_t()
        _check(call(k, out, len(out), ctypes.byref(written)))
        rows = []
        for i in range(count):
            row = out[i * per_image : (i + 1) * per_image]
            rows.append([Prediction(p.class_index, self.class_names[p.class_index], p.score) for p in row])
        return rows

    def classify_files(self, paths, k=5):
        """Top-``k`` classes of each image file."""
        paths = list(paths)
        array, _keep = _paths(paths)
        return self._results(
            len(paths),
            k,
            lambda k, out, cap, n: library().reid_classifier_classify_files(
                self.handle, array, len(paths), k, out, cap, n
            ),
        )

    def classify_encoded(self, images, k=5):
        """Top-``k`` classes of each encoded image (``bytes``)."""
        pointers, sizes, _keep = _encoded(images)
        return self._results(
            len(sizes),
            k,
            lambda k, out, cap, n: library().reid_classifier_classify_encoded(
                self.handle, pointers, sizes, len(sizes), k, out, cap, n
            ),
        )

    def classify_images(self, images, k=5, pixel_format=None):
        """Top-``k`` classes of each uint8 pixel array."""
        keep = []
        views = [_image(a, pixel_format, keep) for a in images]
        array = (_Image * len(views))(*views)
        return self._results(
            len(views),
            k,
            lambda k, out, cap, n: library().reid_classifier_classify_images(
                self.handle, array, len(views), k, out, cap, n
            ),
        )


def _vectors(vectors):
    """Embeddings as a C-ordered float32 ``[count, dim]`` array (the library checks ``dim``)."""
    v = np.ascontiguousarray(vectors, dtype=np.float32)
    if v.ndim == 1:
        v = v[None, :]
    if v.ndim != 2:
        raise ValueError(f"embeddings are [count, dim] or [dim] arrays, got shape {v.shape}")
    return v


def _u64(values, count):
    a = np.ascontiguousarray(np.broadcast_to(np.asarray(values, dtype=np.uint64), (count,)))
    return a, a.ctypes.data_as(_c_u64_p)


class Gallery(_Handle):
    """Embeddings with identities and cameras, searched by cosine similarity or euclidean
    distance. ``Gallery(dim)`` is in memory (``save`` writes it atomically);
    ``Gallery.create(path, dim)`` / ``Gallery.open(path)`` give a durable gallery whose every
    change is committed to its file before the call returns."""

    _free = "reid_gallery_free"

    def __init__(self, dim, metric="cosine"):
        if metric not in _METRICS:
            raise ValueError(f"metric {metric!r}: cosine or euclidean")
        handle = ctypes.c_void_p()
        _check(library().reid_gallery_new(dim, _METRICS[metric], ctypes.byref(handle)))
        super().__init__(handle)

    @classmethod
    def _from(cls, fn, *args):
        handle = ctypes.c_void_p()
        _check(fn(*args, ctypes.byref(handle)))
        self = cls.__new__(cls)
        _Handle.__init__(self, handle)
        return self

    @classmethod
    def create(cls, path, dim, metric="cosine"):
        """A new durable gallery at ``path`` (which must not hold one): a file, or a
        PostgreSQL database, ``postgres://user@host:port/db?gallery=NAME`` (a library built
        with the ``postgres`` feature)."""
        if metric not in _METRICS:
            raise ValueError(f"metric {metric!r}: cosine or euclidean")
        return cls._from(library().reid_gallery_create, _path(path), dim, _METRICS[metric])

    @classmethod
    def open(cls, path):
        """An existing durable gallery (a file or a database URL); changes are committed to
        it."""
        return cls._from(library().reid_gallery_open, _path(path))

    @classmethod
    def load(cls, path):
        """A gallery file read into memory (changes are not written back)."""
        return cls._from(library().reid_gallery_load, _path(path))

    def save(self, path):
        """Writes the whole gallery to ``path`` atomically."""
        _check(library().reid_gallery_save(self.handle, _path(path)))

    def __len__(self):
        # Through reid_gallery_count: a database that cannot be read raises, not "0".
        count = ctypes.c_size_t()
        _check(library().reid_gallery_count(self.handle, ctypes.byref(count)))
        return count.value

    def __contains__(self, entry_id):
        return library().reid_gallery_contains(self.handle, entry_id) == 1

    @property
    def dim(self):
        """Embedding dimension."""
        return library().reid_gallery_dim(self.handle)

    @property
    def metric(self):
        """``"cosine"`` or ``"euclidean"``."""
        return {value: name for name, value in _METRICS.items()}[
            library().reid_gallery_metric(self.handle)
        ]

    def ids(self):
        """The ids of every entry, ascending (a snapshot)."""
        n = ctypes.c_size_t()
        while True:
            out = np.empty(n.value, dtype=np.uint64)
            code = library().reid_gallery_ids(
                self.handle, out.ctypes.data_as(_c_u64_p), out.size, ctypes.byref(n)
            )
            # Another thread may add entries between the two calls: ask again.
            if code != _BUFFER_TOO_SMALL:
                _check(code)
                return out[: n.value]

    def add(self, vector, identity, camera=0, time=None):
        """Adds one embedding (``time``: optional ``(start, end)`` seconds it was seen, for
        searches with ``time_window``); returns its entry id."""
        if time is None:
            return int(self.add_batch(vector, [identity], [camera])[0])
        v = _vectors(vector)
        out = ctypes.c_uint64()
        start, end = (float(t) for t in time)
        _check(
            library().reid_gallery_add_timed(
                self.handle,
                v.ctypes.data_as(_c_float_p),
                v.shape[1],
                identity,
                camera,
                start,
                end,
                ctypes.byref(out),
            )
        )
        return int(out.value)

    def add_batch(self, vectors, identities, cameras=0, ids=None):
        """Adds ``[count, dim]`` embeddings, all or nothing; returns their entry ids.
        ``cameras`` (one or per entry), ``ids`` (optional: chosen ids) as in the C ABI."""
        v = _vectors(vectors)
        count = v.shape[0]
        ident, ident_p = _u64(identities, count)
        cams = np.ascontiguousarray(np.broadcast_to(np.asarray(cameras, dtype=np.int32), (count,)))
        chosen, chosen_p = _u64(ids, count) if ids is not None else (None, None)
        out = np.empty(count, dtype=np.uint64)
        _check(
            library().reid_gallery_add_batch(
                self.handle,
                v.ctypes.data_as(_c_float_p),
                count,
                v.shape[1],
                chosen_p,
                ident_p,
                cams.ctypes.data_as(_c_i32_p),
                out.ctypes.data_as(_c_u64_p),
            )
        )
        return out

    def update(self, entry_id, vector, identity, camera=0):
        """Replaces entry ``entry_id``'s embedding, identity and camera."""
        v = _vectors(vector)
        _check(
            library().reid_gallery_update(
                self.handle, entry_id, v.ctypes.data_as(_c_float_p), v.shape[1], identity, camera
            )
        )

    def remove(self, entry_id):
        """Removes one entry (``ReidError`` REID_NOT_FOUND when absent)."""
        _check(library().reid_gallery_remove(self.handle, entry_id))

    def remove_identity(self, identity):
        """Removes every entry of ``identity``; returns how many."""
        n = ctypes.c_size_t()
        _check(library().reid_gallery_remove_identity(self.handle, identity, ctypes.byref(n)))
        return n.value

    def get(self, entry_id):
        """(embedding as stored, identity, camera) of one entry."""
        v = np.empty(self.dim, dtype=np.float32)
        ident, cam = ctypes.c_uint64(), ctypes.c_int32()
        _check(
            library().reid_gallery_get(
                self.handle,
                entry_id,
                v.ctypes.data_as(_c_float_p),
                self.dim,
                None,
                ctypes.byref(ident),
                ctypes.byref(cam),
            )
        )
        return v, ident.value, cam.value

    def bind_model(self, fingerprint, replace=False):
        """Binds the gallery to the model whose embeddings it holds (``Extractor.fingerprint``):
        another model's fails with ``ReidError`` REID_MODEL_MISMATCH once the gallery holds
        entries, unless ``replace``."""
        _check(library().reid_gallery_bind_model(self.handle, fingerprint.encode(), int(replace)))

    def adopt_calibration(self, extractor):
        """Keeps the threshold calibrated for ``extractor``'s model as the gallery's (for
        ``search(..., calibrated=True)``)."""
        _check(library().reid_gallery_adopt_calibration(self.handle, extractor.handle))

    def keep_crops(self, max_bytes):
        """Keeps each entry's crop from now on (``set_crop``), each at most ``max_bytes``, so
        that ``reembed`` can embed them again with a new model."""
        _check(library().reid_gallery_keep_crops(self.handle, max_bytes))

    def set_crop(self, entry_id, crop):
        """Gives entry ``entry_id`` its crop: the encoded image (JPEG, PNG, BMP or WebP bytes)
        its embedding was computed from."""
        data = bytes(crop)
        _check(library().reid_gallery_set_crop(self.handle, entry_id, data, len(data)))

    def crop(self, entry_id):
        """The crop kept with entry ``entry_id`` (bytes), or ``None`` if it has none."""
        size = ctypes.c_size_t()
        code = library().reid_gallery_crop(self.handle, entry_id, None, 0, ctypes.byref(size))
        if code != _BUFFER_TOO_SMALL:
            _check(code)
            return None
        buf = ctypes.create_string_buffer(size.value)
        _check(
            library().reid_gallery_crop(self.handle, entry_id, buf, size.value, ctypes.byref(size))
        )
        return buf.raw[: size.value]

    def reembed(self, extractor):
        """Embeds every entry's kept crop with ``extractor``'s model and, at once, replaces
        every embedding, binds the gallery to that model and takes its calibration; returns
        the number of entries re-embedded. Nothing changes on failure."""
        count = ctypes.c_size_t()
        _check(library().reid_gallery_reembed(self.handle, extractor.handle, ctypes.byref(count)))
        return int(count.value)

    def calibrate(self, vectors, identities, far=0.001):
        """Finds and keeps the score threshold that accepts ``far`` of the different-identity
        pairs of a labelled set (``[n, dim]`` embeddings, ``n`` identities; every pair, at most
        5,000 rows); returns ``(threshold, true-accept rate)``. ``search(...,
        calibrated=True)`` then uses it."""
        v = _vectors(vectors)
        ids = np.ascontiguousarray(identities, dtype=np.uint64)
        threshold, tar = ctypes.c_float(), ctypes.c_double()
        _check(
            library().reid_gallery_calibrate(
                self.handle,
                v.ctypes.data_as(_c_float_p),
                v.shape[0],
                v.shape[1],
                ids.ctypes.data_as(_c_u64_p),
                far,
                ctypes.byref(threshold),
                ctypes.byref(tar),
            )
        )
        return threshold.value, tar.value

    def search(
        self,
        query,
        k=10,
        min_score=None,
        group_by_identity=False,
        exclude_camera=None,
        calibrated=False,
        time_window=None,
    ):
        """The best matches of one embedding, best first (a list of :data:`Match`);
        ``calibrated`` keeps only those past the threshold of :meth:`calibrate`;
        ``time_window`` (``(start, end)`` seconds) only entries seen then."""
        return self.search_batch(
            query, k, min_score, group_by_identity, exclude_camera, calibrated, time_window
        )[0]

    def search_batch(
        self,
        queries,
        k=10,
        min_score=None,
        group_by_identity=False,
        exclude_camera=None,
        calibrated=False,
        time_window=None,
    ):
        """The best matches of each of ``[count, dim]`` embeddings."""
        q = _vectors(queries)
        count = q.shape[0]
        opts = library().reid_search_options_default()
        opts.k = k
        if min_score is not None:
            opts.flags |= _SEARCH_MIN_SCORE
            opts.min_score = min_score
        if group_by_identity:
            opts.flags |= _SEARCH_GROUP_BY_IDENTITY
        if exclude_camera is not None:
            opts.flags |= _SEARCH_EXCLUDE_CAMERA
            opts.exclude_camera = exclude_camera
        if calibrated:
            opts.flags |= _SEARCH_CALIBRATED
        if time_window is not None:
            opts.flags |= _SEARCH_TIME_WINDOW
            opts.time_from, opts.time_to = (float(t) for t in time_window)
        out = (_Match * (count * max(k, 1)))()
        counts = (ctypes.c_size_t * count)()
        _check(
            library().reid_gallery_search_batch(
                self.handle,
                q.ctypes.data_as(_c_float_p),
                count,
                q.shape[1],
                ctypes.byref(opts),
                out,
                len(out),
                counts,
            )
        )
        return [
            [Match(m.id, m.identity, m.camera, m.score) for m in out[i * k : i * k + counts[i]]]
            for i in range(count)
        ]

    def export_npz(self, path):
        """Writes ``vectors``, ``ids``, ``identities``, ``cameras`` as a NumPy ``.npz``."""
        _check(library().reid_gallery_export_npz(self.handle, _path(path)))

    def import_npz(self, path):
        """Adds the entries of a ``.npz`` as ``export_npz`` writes it; returns how many."""
        n = ctypes.c_size_t()
        _check(library().reid_gallery_import_npz(self.handle, _path(path), ctypes.byref(n)))
        return n.value


def _matching_config(threshold, candidates, min_transit_seconds, links):
    """The C config for these settings, and the links array it points to (keep it alive)."""
    config = library().reid_matching_config_default()
    if threshold is not None:
        config.flags |= _MATCH_THRESHOLD
        config.threshold = threshold
    if candidates is not None:
        config.candidates = candidates
    config.min_transit_seconds = min_transit_seconds
    links = list(links)
    array = (_CameraLink * len(links))(*(_CameraLink(a, b, float(s)) for a, b, s in links))
    if links:
        config.links = array
    config.link_count = len(links)
    return config, array


class IdentityStore(_Handle):
    """Global identities for the tracks of many cameras: :meth:`observe` gives each track the
    identity of the most similar earlier tracks that the camera topology allows, or a new
    one. ``threshold`` is the least cosine similarity to join an identity (``None``: the
    threshold of :meth:`calibrate`); ``min_transit_seconds`` the time a person needs between
    two cameras; ``links`` ``(camera_a, camera_b, min_seconds)`` neighbours with their own.
    ``IdentityStore(dim, ...)`` is in memory; :meth:`create` / :meth:`open` keep it in a file
    or a PostgreSQL database."""

    _free = "reid_identity_store_free"

    def __init__(self, dim, threshold=None, candidates=None, min_transit_seconds=0.0, links=()):
        config, _links = _matching_config(threshold, candidates, min_transit_seconds, links)
        handle = ctypes.c_void_p()
        _check(
            library().reid_identity_store_new(dim, ctypes.byref(config), ctypes.byref(handle))
        )
        super().__init__(handle)

    @property
    def dim(self):
        """Embedding dimension."""
        return library().reid_identity_store_dim(self.handle)

    @classmethod
    def create(
        cls, location, dim, threshold=None, candidates=None, min_transit_seconds=0.0, links=()
    ):
        """A new durable store at ``location`` (a file, or a ``postgres://`` URL)."""
        config, _links = _matching_config(threshold, candidates, min_transit_seconds, links)
        handle = ctypes.c_void_p()
        _check(
            library().reid_identity_store_create(
                _path(location), dim, ctypes.byref(config), ctypes.byref(handle)
            )
        )
        self = cls.__new__(cls)
        _Handle.__init__(self, handle)
        return self

    @classmethod
    def open(cls, location):
        """An existing durable store, with the settings it keeps."""
        handle = ctypes.c_void_p()
        _check(library().reid_identity_store_open(_path(location), ctypes.byref(handle)))
        self = cls.__new__(cls)
        _Handle.__init__(self, handle)
        return self

    def configure(self, threshold=None, candidates=None, min_transit_seconds=0.0, links=()):
        """Replaces the matching settings (kept with a durable store)."""
        config, _links = _matching_config(threshold, candidates, min_transit_seconds, links)
        _check(library().reid_identity_store_configure(self.handle, ctypes.byref(config)))

    def calibrate(self, vectors, identities, far=0.001):
        """Finds and keeps the threshold that accepts ``far`` of the different-identity pairs
        of labelled embeddings; returns ``(threshold, true-accept rate)``."""
        v = _vectors(vectors)
        ident, ident_p = _u64(identities, v.shape[0])
        threshold, tar = ctypes.c_float(), ctypes.c_double()
        _check(
            library().reid_identity_store_calibrate(
                self.handle,
                v.ctypes.data_as(_c_float_p),
                v.shape[0],
                v.shape[1],
                ident_p,
                far,
                ctypes.byref(threshold),
                ctypes.byref(tar),
            )
        )
        return threshold.value, tar.value

    def observe(self, camera, track, start, end, embeddings, quality=None):
        """Reports track ``track`` of ``camera``, seen from ``start`` to ``end`` (seconds) with
        ``[crops, dim]`` crop embeddings (``quality``: optional weights per crop); returns its
        :data:`Assignment`."""
        v = _vectors(embeddings)
        q = None if quality is None else np.ascontiguousarray(quality, dtype=np.float32)
        if q is not None and q.size != v.shape[0]:
            raise ValueError(f"{q.size} quality weights for {v.shape[0]} crops")
        report = _Track(
            camera,
            track,
            float(start),
            float(end),
            v.ctypes.data_as(_c_float_p),
            v.shape[0],
            v.shape[1],
            None if q is None else q.ctypes.data_as(_c_float_p),
        )
        out = _Assignment()
        _check(
            library().reid_identity_store_observe(
                self.handle, ctypes.byref(report), ctypes.byref(out)
            )
        )
        score = float(out.score) if out.matched else None
        return Assignment(int(out.identity), bool(out.created), score, int(out.entry))

    def identity_of(self, camera, track):
        """The global identity of a reported track (``KeyError`` if it never was)."""
        out = ctypes.c_uint64()
        code = library().reid_identity_store_identity_of(
            self.handle, camera, track, ctypes.byref(out)
        )
        if code == _NOT_FOUND:
            raise KeyError((camera, track))
        _check(code)
        return int(out.value)

    def sightings(self, identity):
        """Where and when ``identity`` was seen, in time order (a list of :data:`Sighting`)."""
        n = ctypes.c_size_t()
        while True:
            out = (_Sighting * n.value)()
            code = library().reid_identity_store_sightings(
                self.handle, identity, out, n.value, ctypes.byref(n)
            )
            # Another thread may report meanwhile: ask again.
            if code != _BUFFER_TOO_SMALL:
                _check(code)
                return [
                    Sighting(s.camera, s.track, s.time_start, s.time_end)
                    for s in out[: n.value]
                ]

    def merge(self, kept, absorbed):
        """Makes identity ``absorbed`` part of ``kept``; returns how many reports moved."""
        moved = ctypes.c_size_t()
        _check(
            library().reid_identity_store_merge(self.handle, kept, absorbed, ctypes.byref(moved))
        )
        return moved.value

    def split(self, camera, track):
        """Gives track ``track`` of ``camera`` a new identity of its own; returns it."""
        out = ctypes.c_uint64()
        _check(
            library().reid_identity_store_split(self.handle, camera, track, ctypes.byref(out))
        )
        return int(out.value)


class Finetuner(_Handle):
    """Finetunes a re-id model on a site's own images (``architecture``, starting
    ``weights`` or None for random ones, a working folder that makes runs resumable).
    Single-owner: use it from one thread."""

    _free = "reid_finetuner_free"

    def __init__(self, architecture, weights, work_dir):
        handle = ctypes.c_void_p()
        weights = _path(weights) if weights is not None else None
        _check(
            library().reid_finetuner_new(
                architecture.encode(), weights, _path(work_dir), ctypes.byref(handle)
            )
        )
        super().__init__(handle)

    def set_epochs(self, epochs):
        """Epochs of the next ``run``."""
        _check(library().reid_finetuner_set_epochs(self.handle, epochs))

    def set_training(self, batch_size, learning_rate, height, width):
        """Batch size, learning rate and input size of the next ``run``."""
        _check(
            library().reid_finetuner_set_training(self.handle, batch_size, learning_rate, height, width)
        )

    def add_encoded(self, data, identity, camera=0, split="train"):
        """Adds an encoded image (``bytes``) to ``split`` (train, query or gallery)."""
        data = bytes(data)
        _check(
            library().reid_finetuner_add_encoded(
                self.handle, data, len(data), identity, camera, _SPLITS[split]
            )
        )

    def add_image(self, array, identity, camera=0, split="train", pixel_format=None):
        """Adds a uint8 pixel array to ``split``."""
        keep = []
        view = _image(array, pixel_format, keep)
        _check(
            library().reid_finetuner_add_image(
                self.handle, ctypes.byref(view), identity, camera, _SPLITS[split]
            )
        )

    def add_folder(self, root):
        """Adds a folder-per-identity dataset; returns how many images."""
        n = ctypes.c_size_t()
        _check(library().reid_finetuner_add_folder(self.handle, _path(root), ctypes.byref(n)))
        return n.value

    def __len__(self):
        return library().reid_finetuner_len(self.handle)

    def run(self, progress=None):
        """Trains; ``progress(Progress)`` is called after every step and epoch and may return
        True to cancel (``ReidError`` REID_CANCELLED; completed epochs stay checkpointed).
        An exception raised by ``progress`` cancels the run and is raised again here."""
        raised = []

        def trampoline(_user, p):
            try:
                c = p.contents
                report = Progress(
                    c.epoch, c.epochs, c.step, c.steps, c.loss, c.accuracy,
                    c.learning_rate, c.map, c.rank1, bool(c.end_of_epoch),
                )
                return 1 if progress(report) else 0
            except BaseException as e:  # noqa: BLE001 - re-raised after the C call
                raised.append(e)
                return 1

        callback = _ProgressCallback(trampoline) if progress else _ProgressCallback()
        code = library().reid_finetuner_run(self.handle, callback, None)
        if raised:
            raise raised[0]
        _check(code)

    def evaluate(self):
        """(mAP, Rank-1) on the held-out query and gallery images."""
        m, r = ctypes.c_float(), ctypes.c_float()
        _check(library().reid_finetuner_evaluate(self.handle, ctypes.byref(m), ctypes.byref(r)))
        return m.value, r.value

    def save(self, checkpoint_path):
        """Saves the current model as a reid checkpoint (atomically)."""
        _check(library().reid_finetuner_save(self.handle, _path(checkpoint_path)))

    def export_onnx(self, onnx_path):
        """Exports the current model to ONNX at the finetuning input size (atomically)."""
        _check(library().reid_finetuner_export_onnx(self.handle, _path(onnx_path)))

    def new_extractor(self, **options):
        """An :class:`Extractor` for the current model."""
        handle = ctypes.c_void_p()
        with _Options(**options) as opts:
            _check(library().reid_finetuner_new_extractor(self.handle, opts.handle, ctypes.byref(handle)))
        return Extractor._adopt(handle)
