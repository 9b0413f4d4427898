//! The command line the engine benchmarks share: `[ROUNDS] [MODEL] [BATCH]` — the first number
//! the rounds, the second a batch size to keep (else 1 and 32), a word a model to keep (else
//! all); flags cargo passes (`--bench`) are skipped.

use reid::models::Arch;

/// Which cases a run measures, and how often.
pub struct Cases {
    /// Rounds per case.
    pub rounds: usize,
    /// Batch sizes.
    pub batches: Vec<usize>,
    only: Option<String>,
}

impl Cases {
    /// From the process's arguments, `default_rounds` when none is given.
    pub fn from_args(default_rounds: usize) -> Self {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let numbers: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
        Self {
            rounds: numbers.first().copied().unwrap_or(default_rounds).max(1),
            batches: numbers.get(1).map_or(vec![1, 32], |&b| vec![b]),
            only: args
                .into_iter()
                .find(|a| a.parse::<usize>().is_err() && !a.starts_with('-')),
        }
    }

    /// Whether `arch` is measured.
    pub fn wants(&self, arch: Arch) -> bool {
        self.only.as_deref().is_none_or(|name| name == arch.name())
    }
}
