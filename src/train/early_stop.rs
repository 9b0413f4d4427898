//! Early stopping's bookkeeping: the best evaluation so far and the evaluations since it.

/// Judges one evaluation's `score` (higher is better): a new best resets the count and returns
/// `true`; otherwise the count grows by one — always, or with `after_decay` (deep-object-reid's
/// `train.early_stopping`) only when the rate had `decayed` below its base after the warm-up,
/// so that a run is not stopped while its rate is still at its peak.
pub fn judge(
    best: &mut Option<f64>,
    since_best: &mut usize,
    score: f64,
    after_decay: bool,
    decayed: bool,
) -> bool {
    if best.is_none_or(|b| score > b) {
        *best = Some(score);
        *since_best = 0;
        true
    } else {
        if decayed || !after_decay {
            *since_best += 1;
        }
        false
    }
}

/// Whether `since_best` evaluations without a better one end the run (`patience` 0: never).
pub fn should_stop(since_best: usize, patience: usize) -> bool {
    patience > 0 && since_best >= patience
}
