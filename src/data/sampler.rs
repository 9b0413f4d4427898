//! The order in which training images are visited in an epoch: sequential, random, or
//! identity-balanced batches of P identities × K images (torchreid's
//! `RandomIdentitySampler`, which triplet losses need).

use std::collections::BTreeMap;

use super::dataset::Sample;
use super::rng::Rng;
use crate::error::{Error, Result};

/// How an epoch visits the training set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sampler {
    /// In dataset order.
    Sequential,
    /// A random permutation.
    Random,
    /// Batches of `batch_size / instances` identities with `instances` images each.
    RandomIdentity {
        /// Images per identity in a batch (K).
        instances: usize,
    },
}

impl std::str::FromStr for Sampler {
    type Err = Error;

    /// torchreid's names: `SequentialSampler`, `RandomSampler`, `RandomIdentitySampler`
    /// (with the default K = 4).
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "SequentialSampler" | "sequential" => Ok(Sampler::Sequential),
            "RandomSampler" | "random" => Ok(Sampler::Random),
            "RandomIdentitySampler" | "random_identity" => {
                Ok(Sampler::RandomIdentity { instances: 4 })
            }
            other => Err(Error::InvalidInput(format!(
                "unknown sampler `{other}`; expected SequentialSampler, RandomSampler or \
                 RandomIdentitySampler"
            ))),
        }
    }
}

impl Sampler {
    /// The indices of `samples` for one epoch. For `RandomIdentity` the length is a multiple
    /// of `batch_size` and every consecutive `batch_size` indices form P × K.
    pub fn epoch(
        &self,
        samples: &[Sample],
        batch_size: usize,
        rng: &mut Rng,
    ) -> Result<Vec<usize>> {
        match *self {
            Sampler::Sequential => Ok((0..samples.len()).collect()),
            Sampler::Random => {
                let mut order: Vec<usize> = (0..samples.len()).collect();
                rng.shuffle(&mut order);
                Ok(order)
            }
            Sampler::RandomIdentity { instances } => {
                identity_batches(samples, batch_size, instances, rng)
            }
        }
    }
}

fn identity_batches(
    samples: &[Sample],
    batch_size: usize,
    instances: usize,
    rng: &mut Rng,
) -> Result<Vec<usize>> {
    if instances == 0 || batch_size < instances || !batch_size.is_multiple_of(instances) {
        return Err(Error::InvalidInput(format!(
            "batch size {batch_size} must be a positive multiple of the instances per identity \
             ({instances})"
        )));
    }
    let per_batch = batch_size / instances;
    let mut by_pid: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, s) in samples.iter().enumerate() {
        by_pid.entry(s.pid).or_default().push(i);
    }
    if by_pid.len() < per_batch {
        return Err(Error::InvalidInput(format!(
            "{} identities cannot fill batches of {per_batch} identities",
            by_pid.len()
        )));
    }
    // Each identity's images, shuffled and cut into groups of K (identities with fewer than
    // K images are drawn with replacement up to K; an incomplete last group is dropped).
    let mut groups: BTreeMap<i64, Vec<Vec<usize>>> = BTreeMap::new();
    for (&pid, indices) in &by_pid {
        let mut pool = if indices.len() < instances {
            (0..instances).map(|_| *rng.pick(indices)).collect()
        } else {
            indices.clone()
        };
        rng.shuffle(&mut pool);
        groups.insert(
            pid,
            pool.chunks_exact(instances).map(|c| c.to_vec()).collect(),
        );
    }
    let mut available: Vec<i64> = groups.keys().copied().collect();
    let mut order = Vec::new();
    while available.len() >= per_batch {
        rng.shuffle(&mut available);
        let chosen: Vec<i64> = available[..per_batch].to_vec();
        for pid in chosen {
            let queue = groups.get_mut(&pid).expect("available pid");
            order.extend(queue.remove(0));
            if queue.is_empty() {
                available.retain(|&p| p != pid);
            }
        }
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(counts: &[usize]) -> Vec<Sample> {
        counts
            .iter()
            .enumerate()
            .flat_map(|(pid, &n)| {
                (0..n).map(move |i| Sample {
                    path: format!("{pid}_{i}.jpg").into(),
                    pid: pid as i64,
                    camera: 0,
                })
            })
            .collect()
    }

    #[test]
    fn identity_batches_are_p_by_k() {
        let samples = data(&[9, 4, 2, 7, 5, 12, 1, 8]);
        let sampler = Sampler::RandomIdentity { instances: 4 };
        let order = sampler.epoch(&samples, 16, &mut Rng::new(5)).unwrap();
        assert!(!order.is_empty() && order.len().is_multiple_of(16));
        for batch in order.chunks(16) {
            let mut per_pid: BTreeMap<i64, usize> = BTreeMap::new();
            for &i in batch {
                *per_pid.entry(samples[i].pid).or_default() += 1;
            }
            assert_eq!(per_pid.len(), 4, "{per_pid:?}");
            assert!(per_pid.values().all(|&k| k == 4), "{per_pid:?}");
        }
        // Same seed, same epoch; another seed, another order.
        assert_eq!(
            order,
            sampler.epoch(&samples, 16, &mut Rng::new(5)).unwrap()
        );
        assert_ne!(
            order,
            sampler.epoch(&samples, 16, &mut Rng::new(6)).unwrap()
        );
        assert!(sampler.epoch(&samples, 10, &mut Rng::new(5)).is_err());
        assert!(sampler.epoch(&data(&[4, 4]), 16, &mut Rng::new(5)).is_err());
    }

    #[test]
    fn random_is_a_permutation() {
        let samples = data(&[3, 3, 3]);
        let mut order = Sampler::Random
            .epoch(&samples, 4, &mut Rng::new(1))
            .unwrap();
        assert_ne!(order, (0..9).collect::<Vec<_>>());
        order.sort();
        assert_eq!(order, (0..9).collect::<Vec<_>>());
        assert_eq!(
            Sampler::Sequential
                .epoch(&samples, 4, &mut Rng::new(1))
                .unwrap(),
            (0..9).collect::<Vec<_>>()
        );
        assert_eq!(
            "RandomIdentitySampler".parse::<Sampler>().unwrap(),
            Sampler::RandomIdentity { instances: 4 }
        );
    }
}
