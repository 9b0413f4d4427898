//! The shape every re-id dataset is read into: train, query and gallery lists of images with
//! identity and camera labels, as torchreid's `ImageDataset` holds them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// One image of a re-id dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// The image file.
    pub path: PathBuf,
    /// Identity. In `train` a label from 0 to the number of training identities; in query and
    /// gallery the dataset's own number (0 may be a distractor, as in Market-1501).
    pub pid: i64,
    /// Camera, from 0.
    pub camera: i32,
    /// Which training set the image comes from, from 0 ([`combine_train`] numbers the sources
    /// in order; 0 otherwise).
    pub dataset: usize,
}

/// A re-id dataset: training images, and the query and gallery images of its test split.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReidDataset {
    /// Name (`market1501`, …).
    pub name: String,
    /// Training images, identities relabelled 0..n.
    pub train: Vec<Sample>,
    /// Query images.
    pub query: Vec<Sample>,
    /// Gallery images.
    pub gallery: Vec<Sample>,
}

/// Labels 0..n for the distinct `ids`, in increasing order of the ids.
pub(crate) fn ascending_labels(ids: impl Iterator<Item = i64>) -> BTreeMap<i64, i64> {
    ids.collect::<BTreeSet<_>>().into_iter().zip(0..).collect()
}

fn distinct<T: Ord>(values: impl Iterator<Item = T>) -> usize {
    values.collect::<BTreeSet<_>>().len()
}

impl ReidDataset {
    /// Number of training identities (classifier size).
    pub fn num_train_pids(&self) -> usize {
        distinct(self.train.iter().map(|s| s.pid))
    }

    /// Number of training cameras.
    pub fn num_train_cameras(&self) -> usize {
        distinct(self.train.iter().map(|s| s.camera))
    }

    /// Relabels training identities to 0..n in increasing order of the original numbers
    /// (torchreid's `relabel=True`).
    pub fn relabel_train(&mut self) {
        let labels = ascending_labels(self.train.iter().map(|s| s.pid));
        for s in &mut self.train {
            s.pid = labels[&s.pid];
        }
    }

    /// torchreid's `combineall`: the query and gallery images join the training set, their
    /// identities numbered after the training ones (in increasing order of their numbers,
    /// where torchreid takes a Python set's order: the same identities under other labels),
    /// the dataset's `junk` identities left out (Market-1501's 0 and −1, [`junk_pids`]).
    /// Query and gallery stay as they are, for evaluation.
    pub fn combine_all(&mut self, junk: &[i64]) {
        let offset = self.num_train_pids() as i64;
        let kept = || {
            self.query
                .iter()
                .chain(&self.gallery)
                .filter(|s| !junk.contains(&s.pid))
        };
        let labels = ascending_labels(kept().map(|s| s.pid));
        let added: Vec<Sample> = kept()
            .map(|s| Sample {
                path: s.path.clone(),
                pid: labels[&s.pid] + offset,
                camera: s.camera,
                dataset: s.dataset,
            })
            .collect();
        self.train.extend(added);
    }

    /// A table of identities, images and cameras per split, like torchreid's summary.
    pub fn summary(&self) -> String {
        let row = |split: &str, samples: &[Sample]| {
            format!(
                "  {split:<8} | {:>5} | {:>8} | {:>5}\n",
                distinct(samples.iter().map(|s| s.pid)),
                samples.len(),
                distinct(samples.iter().map(|s| s.camera))
            )
        };
        format!(
            "=> {}\n  subset   | # ids | # images | # cameras\n{}{}{}",
            self.name,
            row("train", &self.train),
            row("query", &self.query),
            row("gallery", &self.gallery)
        )
    }
}

/// The identities a dataset's `combineall` leaves out (torchreid's `_junk_pids`): Market-1501's
/// distractors (0) and junk (−1); none elsewhere.
pub fn junk_pids(dataset: &str) -> &'static [i64] {
    match dataset {
        "market1501" => &[0, -1],
        _ => &[],
    }
}

/// The training images of several datasets as one training set: identities and cameras of
/// each dataset are offset past the previous ones, so they never collide (torchreid's
/// handling of several `sources`).
pub fn combine_train(datasets: &[ReidDataset]) -> Vec<Sample> {
    let mut out = Vec::new();
    let (mut pid_offset, mut camera_offset) = (0i64, 0i32);
    for (index, d) in datasets.iter().enumerate() {
        out.extend(d.train.iter().map(|s| Sample {
            path: s.path.clone(),
            pid: s.pid + pid_offset,
            camera: s.camera + camera_offset,
            dataset: index,
        }));
        pid_offset += d.train.iter().map(|s| s.pid + 1).max().unwrap_or(0);
        camera_offset += d.train.iter().map(|s| s.camera + 1).max().unwrap_or(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(pid: i64, camera: i32) -> Sample {
        Sample {
            path: format!("{pid}_{camera}.jpg").into(),
            pid,
            camera,
            dataset: 0,
        }
    }

    #[test]
    fn relabel_and_combine_keep_identities_apart() {
        let mut a = ReidDataset {
            name: "a".into(),
            train: vec![sample(7, 0), sample(3, 1), sample(7, 1)],
            ..Default::default()
        };
        a.relabel_train();
        assert_eq!(a.train.iter().map(|s| s.pid).collect::<Vec<_>>(), [1, 0, 1]);
        let b = ReidDataset {
            name: "b".into(),
            train: vec![sample(0, 0), sample(1, 2)],
            ..Default::default()
        };
        let all = combine_train(&[a.clone(), b]);
        assert_eq!(
            all.iter().map(|s| (s.pid, s.camera)).collect::<Vec<_>>(),
            [(1, 0), (0, 1), (1, 1), (2, 2), (3, 4)]
        );
        assert_eq!(a.num_train_pids(), 2);
        assert!(a.summary().contains("train"));
    }
}
