//! One table of bad options, fed through the Rust API, the C ABI (tests/ffi/validation.rs) and the
//! Python binding (tests/python/binding.rs): each must be refused with the same message,
//! because each path goes through the library's one validation.

use reid::extractor::ExtractorOptions;
use reid::gallery::SearchOptions;
use reid::preprocess::PreprocessingOverrides;

/// A bad value for one option.
#[derive(Debug, Clone, Copy)]
pub enum BadOption {
    /// `sessions` 0 (threads 1).
    Sessions0,
    /// `max_batch` 0.
    MaxBatch0,
    /// Input size with a zero side.
    InputSizeZero,
    /// Input size far beyond any model (the size of a `size_t`).
    InputSizeHuge,
    /// Normalization with a zero standard deviation.
    StdZero,
    /// A device this build does not know.
    UnknownDevice,
    /// A search for no results.
    SearchK0,
    /// A search with a NaN minimum score.
    SearchNanMinScore,
}

impl BadOption {
    /// Every case.
    pub const ALL: [BadOption; 8] = [
        BadOption::Sessions0,
        BadOption::MaxBatch0,
        BadOption::InputSizeZero,
        BadOption::InputSizeHuge,
        BadOption::StdZero,
        BadOption::UnknownDevice,
        BadOption::SearchK0,
        BadOption::SearchNanMinScore,
    ];

    /// The case's name in the Python spec.
    pub fn name(self) -> &'static str {
        match self {
            BadOption::Sessions0 => "sessions0",
            BadOption::MaxBatch0 => "max_batch0",
            BadOption::InputSizeZero => "input_size_zero",
            BadOption::InputSizeHuge => "input_size_huge",
            BadOption::StdZero => "std_zero",
            BadOption::UnknownDevice => "unknown_device",
            BadOption::SearchK0 => "search_k0",
            BadOption::SearchNanMinScore => "search_nan_min_score",
        }
    }

    /// The error the Rust API gives for the case.
    pub fn rust_error(self) -> reid::Error {
        let extractor = |change: &dyn Fn(&mut ExtractorOptions)| {
            let mut options = ExtractorOptions::default();
            change(&mut options);
            options.validate().expect_err("a bad option")
        };
        let overrides = |o: PreprocessingOverrides| extractor(&|x| x.overrides = o.clone());
        let search = |o: SearchOptions| o.validate().expect_err("a bad search option");
        match self {
            BadOption::Sessions0 => extractor(&|o| o.sessions = 0),
            BadOption::MaxBatch0 => extractor(&|o| o.max_batch = 0),
            BadOption::InputSizeZero => overrides(PreprocessingOverrides {
                size: Some((0, 128)),
                ..Default::default()
            }),
            BadOption::InputSizeHuge => overrides(PreprocessingOverrides {
                size: Some((usize::MAX, usize::MAX)),
                ..Default::default()
            }),
            BadOption::StdZero => overrides(PreprocessingOverrides {
                normalization: Some((1.0 / 255.0, [0.5; 3], [0.0, 0.2, 0.2])),
                ..Default::default()
            }),
            BadOption::UnknownDevice => extractor(&|o| o.device = "abacus:3".into()),
            BadOption::SearchK0 => search(SearchOptions::top(0)),
            BadOption::SearchNanMinScore => search(SearchOptions {
                min_score: Some(f32::NAN),
                ..SearchOptions::top(5)
            }),
        }
    }
}
