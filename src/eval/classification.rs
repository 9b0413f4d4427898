//! Classification metrics: top-k accuracy (torchreid's `metrics.accuracy`) and mean average
//! precision over classes for multilabel outputs.

use crate::error::{Error, Result};

/// Fraction of samples (0–1) whose label is among the `k` highest of their `num_classes`
/// scores (row-major `[N, num_classes]`). Ties go to the lower class index.
pub fn top_k_accuracy(
    scores: &[f32],
    num_classes: usize,
    labels: &[usize],
    k: usize,
) -> Result<f64> {
    check_shape(scores, num_classes, labels.len())?;
    if k == 0 {
        return Err(Error::InvalidInput("k must be at least 1".into()));
    }
    let hits = scores
        .chunks(num_classes)
        .zip(labels)
        .filter(|&(row, &label)| {
            let target = row[label];
            // Rank of the label: classes scoring higher, or equal with a lower index.
            let better = row
                .iter()
                .enumerate()
                .filter(|&(c, &s)| s > target || (s == target && c < label))
                .count();
            better < k
        })
        .count();
    Ok(hits as f64 / labels.len().max(1) as f64)
}

fn check_shape(scores: &[f32], num_classes: usize, n: usize) -> Result<()> {
    if num_classes == 0 || scores.len() != n * num_classes {
        return Err(Error::InvalidInput(format!(
            "{} scores do not form [{n}, {num_classes}]",
            scores.len()
        )));
    }
    Ok(())
}

/// Mean over classes with at least one positive of the average precision of ranking the
/// samples by that class's score (`targets` row-major `[N, num_classes]`, 1 = positive).
pub fn multilabel_map(scores: &[f32], targets: &[u8], num_classes: usize) -> Result<f64> {
    let n = targets.len() / num_classes.max(1);
    check_shape(scores, num_classes, n)?;
    if targets.len() != scores.len() {
        return Err(Error::InvalidInput(
            "scores and targets differ in shape".into(),
        ));
    }
    let mut aps = Vec::new();
    for c in 0..num_classes {
        let positives = (0..n)
            .filter(|&i| targets[i * num_classes + c] != 0)
            .count();
        if positives == 0 {
            continue;
        }
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| {
            scores[b * num_classes + c]
                .total_cmp(&scores[a * num_classes + c])
                .then(a.cmp(&b))
        });
        let (mut hits, mut sum) = (0usize, 0f64);
        for (rank, &i) in order.iter().enumerate() {
            if targets[i * num_classes + c] != 0 {
                hits += 1;
                sum += hits as f64 / (rank + 1) as f64;
            }
        }
        aps.push(sum / positives as f64);
    }
    if aps.is_empty() {
        return Err(Error::InvalidInput("no class has a positive sample".into()));
    }
    Ok(aps.iter().sum::<f64>() / aps.len() as f64)
}
