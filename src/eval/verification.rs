//! Face verification on pairs, the LFW protocol: for each fold, the similarity threshold that
//! separates same-identity from different-identity pairs best on the other folds is applied
//! to the fold; accuracy is the mean over folds. Also the ROC AUC and the best threshold on
//! all pairs, and a reader for LFW's `pairs.txt`.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Verification results.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verification {
    /// Mean test accuracy over the folds.
    pub accuracy: f64,
    /// Standard deviation of the fold accuracies.
    pub accuracy_std: f64,
    /// The threshold that classifies all pairs best (same identity when similarity ≥ it).
    pub best_threshold: f32,
    /// Area under the ROC curve (ties count half).
    pub auc: f64,
}

/// The threshold among the similarities of `pairs` (indices) with the most correct decisions
/// (the lowest one when several tie), and that count.
fn best_threshold(similarity: &[f32], same: &[bool], pairs: &[usize]) -> (f32, usize) {
    let mut order: Vec<usize> = pairs.to_vec();
    order.sort_by(|&a, &b| similarity[b].total_cmp(&similarity[a]));
    // Threshold above everything: all pairs called different.
    let mut correct = pairs.iter().filter(|&&i| !same[i]).count();
    let (mut best, mut best_correct) = (f32::INFINITY, correct);
    let mut k = 0;
    while k < order.len() {
        // Lower the threshold to the next distinct similarity: those pairs become "same".
        let value = similarity[order[k]];
        while k < order.len() && similarity[order[k]] == value {
            correct = if same[order[k]] {
                correct + 1
            } else {
                correct - 1
            };
            k += 1;
        }
        if correct >= best_correct {
            (best, best_correct) = (value, correct);
        }
    }
    (best, best_correct)
}

/// ROC AUC of `similarity` for telling same-identity pairs (`same`) from the others: the
/// probability that a random same pair scores above a random different pair.
pub fn roc_auc(similarity: &[f32], same: &[bool]) -> Result<f64> {
    let positives = same.iter().filter(|&&s| s).count();
    let negatives = same.len() - positives;
    if positives == 0 || negatives == 0 || similarity.len() != same.len() {
        return Err(Error::InvalidInput(
            "the ROC AUC needs both same and different pairs, one score each".into(),
        ));
    }
    let mut order: Vec<usize> = (0..similarity.len()).collect();
    order.sort_by(|&a, &b| similarity[a].total_cmp(&similarity[b]));
    // Mann–Whitney: sum of the positives' ranks (ties get their average rank).
    let mut rank_sum = 0.0;
    let mut k = 0;
    while k < order.len() {
        let start = k;
        while k < order.len() && similarity[order[k]] == similarity[order[start]] {
            k += 1;
        }
        let average_rank = (start + k + 1) as f64 / 2.0;
        rank_sum += average_rank * order[start..k].iter().filter(|&&i| same[i]).count() as f64;
    }
    let p = positives as f64;
    Ok((rank_sum - p * (p + 1.0) / 2.0) / (p * negatives as f64))
}

/// Verification over `folds` consecutive folds of the pairs (LFW: 10 folds of 600).
pub fn verify(similarity: &[f32], same: &[bool], folds: usize) -> Result<Verification> {
    let n = similarity.len();
    if same.len() != n || folds < 2 || n < folds {
        return Err(Error::InvalidInput(format!(
            "{n} similarities, {} labels, {folds} folds: need one label per pair and at least \
             two folds with a pair each",
            same.len()
        )));
    }
    let mut accuracies = Vec::with_capacity(folds);
    for f in 0..folds {
        let (start, end) = (f * n / folds, (f + 1) * n / folds);
        let train: Vec<usize> = (0..n).filter(|&i| i < start || i >= end).collect();
        let (threshold, _) = best_threshold(similarity, same, &train);
        let correct = (start..end)
            .filter(|&i| (similarity[i] >= threshold) == same[i])
            .count();
        accuracies.push(correct as f64 / (end - start) as f64);
    }
    let mean = accuracies.iter().sum::<f64>() / folds as f64;
    let variance = accuracies.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / folds as f64;
    let all: Vec<usize> = (0..n).collect();
    Ok(Verification {
        accuracy: mean,
        accuracy_std: variance.sqrt(),
        best_threshold: best_threshold(similarity, same, &all).0,
        auc: roc_auc(similarity, same)?,
    })
}

/// One pair of LFW's `pairs.txt`, as image paths under the image root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// First image.
    pub first: PathBuf,
    /// Second image.
    pub second: PathBuf,
    /// Whether both show the same person.
    pub same: bool,
}

/// Reads LFW's `pairs.txt` (an optional `folds pairs` header, then `name i j` for a same
/// pair and `name1 i name2 j` for a different one); image `i` of `name` is
/// `root/name/name_000i.jpg`.
pub fn read_lfw_pairs(path: &Path, root: &Path) -> Result<Vec<Pair>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let image = |name: &str, index: &str| -> Option<PathBuf> {
        let i: u32 = index.parse().ok()?;
        Some(root.join(name).join(format!("{name}_{i:04}.jpg")))
    };
    let mut pairs = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let pair = match fields[..] {
            [] => continue,
            [_, _] if number == 0 => continue,
            [name, i, j] => image(name, i)
                .zip(image(name, j))
                .map(|(a, b)| (a, b, true)),
            [a, i, b, j] => image(a, i).zip(image(b, j)).map(|(x, y)| (x, y, false)),
            _ => None,
        };
        let (first, second, same) = pair.ok_or_else(|| {
            Error::InvalidInput(format!(
                "{}:{}: not an LFW pair",
                path.display(),
                number + 1
            ))
        })?;
        pairs.push(Pair {
            first,
            second,
            same,
        });
    }
    Ok(pairs)
}

/// Verifies `pairs` with `extractor`'s L2-normalized embeddings: each distinct image is
/// embedded once, each pair scored by cosine similarity, then [`verify`] with `folds` folds.
pub fn verify_pairs(
    extractor: &crate::extractor::Extractor,
    pairs: &[Pair],
    folds: usize,
) -> Result<Verification> {
    let mut images: Vec<&PathBuf> = pairs.iter().flat_map(|p| [&p.first, &p.second]).collect();
    images.sort();
    images.dedup();
    let dim = extractor.dim();
    let mut embeddings = extractor.extract_files(&images)?;
    crate::distance::normalize_rows(&mut embeddings, dim);
    let row = |path: &PathBuf| {
        let i = images
            .binary_search(&path)
            .expect("every pair image was embedded");
        &embeddings[i * dim..(i + 1) * dim]
    };
    let similarity: Vec<f32> = pairs
        .iter()
        .map(|p| {
            row(&p.first)
                .iter()
                .zip(row(&p.second))
                .map(|(a, b)| a * b)
                .sum()
        })
        .collect();
    let same: Vec<bool> = pairs.iter().map(|p| p.same).collect();
    verify(&similarity, &same, folds)
}
