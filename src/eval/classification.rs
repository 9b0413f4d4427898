//! Classification metrics: top-k accuracy (torchreid's `metrics.accuracy`), the confusion
//! matrix and mean per-class accuracy; for multilabel outputs mean average precision over
//! classes and CP / CR / CF1 / OP / OR / OF1.

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

/// The predicted class of each row: the highest score, ties to the lower class index.
fn predictions(scores: &[f32], num_classes: usize) -> Vec<usize> {
    scores
        .chunks(num_classes)
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |best, (c, &s)| {
                    if s > best.1 { (c, s) } else { best }
                })
                .0
        })
        .collect()
}

fn check_labels(labels: &[usize], num_classes: usize) -> Result<()> {
    match labels.iter().find(|&&l| l >= num_classes) {
        Some(l) => Err(Error::InvalidInput(format!(
            "label {l} is not below the {num_classes} classes"
        ))),
        None => Ok(()),
    }
}

/// Counts `[true class][predicted class]` of the arg-max predictions (scikit-learn's
/// `confusion_matrix`).
pub fn confusion_matrix(
    scores: &[f32],
    num_classes: usize,
    labels: &[usize],
) -> Result<Vec<Vec<usize>>> {
    check_shape(scores, num_classes, labels.len())?;
    check_labels(labels, num_classes)?;
    let mut matrix = vec![vec![0usize; num_classes]; num_classes];
    for (&truth, predicted) in labels.iter().zip(predictions(scores, num_classes)) {
        matrix[truth][predicted] += 1;
    }
    Ok(matrix)
}

/// Mean over the classes that have samples of each class's accuracy (scikit-learn's
/// `balanced_accuracy_score`).
pub fn mean_class_accuracy(scores: &[f32], num_classes: usize, labels: &[usize]) -> Result<f64> {
    let matrix = confusion_matrix(scores, num_classes, labels)?;
    let per_class: Vec<f64> = matrix
        .iter()
        .enumerate()
        .filter_map(|(c, row)| {
            let total: usize = row.iter().sum();
            (total > 0).then(|| row[c] as f64 / total as f64)
        })
        .collect();
    Ok(per_class.iter().sum::<f64>() / per_class.len().max(1) as f64)
}

/// Multilabel precision, recall and F1 of the predictions `score ≥ threshold`, per class then
/// averaged (CP, CR, CF1) and over all labels at once (OP, OR, OF1), as ML-GCN and the
/// multilabel literature report them; a class never predicted counts as precision 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MultilabelScores {
    /// Per-class precision, averaged.
    pub cp: f64,
    /// Per-class recall, averaged.
    pub cr: f64,
    /// `2 · CP · CR / (CP + CR)`.
    pub cf1: f64,
    /// Overall precision.
    pub op: f64,
    /// Overall recall.
    pub or: f64,
    /// `2 · OP · OR / (OP + OR)`.
    pub of1: f64,
}

fn f1(p: f64, r: f64) -> f64 {
    if p + r > 0.0 {
        2.0 * p * r / (p + r)
    } else {
        0.0
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b > 0 { a as f64 / b as f64 } else { 0.0 }
}

/// [`MultilabelScores`] of `scores` against `targets` (both row-major `[N, num_classes]`).
pub fn multilabel_scores(
    scores: &[f32],
    targets: &[u8],
    num_classes: usize,
    threshold: f32,
) -> Result<MultilabelScores> {
    let n = targets.len() / num_classes.max(1);
    check_shape(scores, num_classes, n)?;
    if targets.len() != scores.len() {
        return Err(Error::InvalidInput(
            "scores and targets differ in shape".into(),
        ));
    }
    let (mut correct, mut predicted, mut actual) = (
        vec![0usize; num_classes],
        vec![0usize; num_classes],
        vec![0usize; num_classes],
    );
    for (i, (&s, &t)) in scores.iter().zip(targets).enumerate() {
        let c = i % num_classes;
        let (p, t) = (s >= threshold, t != 0);
        predicted[c] += usize::from(p);
        actual[c] += usize::from(t);
        correct[c] += usize::from(p && t);
    }
    let mean = |v: Vec<f64>| v.iter().sum::<f64>() / num_classes as f64;
    let cp = mean(
        (0..num_classes)
            .map(|c| ratio(correct[c], predicted[c]))
            .collect(),
    );
    let cr = mean(
        (0..num_classes)
            .map(|c| ratio(correct[c], actual[c]))
            .collect(),
    );
    let sum = |v: &[usize]| v.iter().sum::<usize>();
    let op = ratio(sum(&correct), sum(&predicted));
    let or = ratio(sum(&correct), sum(&actual));
    Ok(MultilabelScores {
        cp,
        cr,
        cf1: f1(cp, cr),
        op,
        or,
        of1: f1(op, or),
    })
}
