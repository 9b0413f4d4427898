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
    /// torchreid's `RandomDomainSampler`, each camera a domain: batches of `domains` cameras
    /// drawn at random with `batch_size / domains` images each, drawn without replacement
    /// until a camera runs short.
    RandomDomain {
        /// Cameras per batch (torchreid's `num_cams`; 0: every camera).
        domains: usize,
    },
}

impl std::str::FromStr for Sampler {
    type Err = Error;

    /// torchreid's names: `SequentialSampler`, `RandomSampler`, `RandomIdentitySampler`
    /// (with the default K = 4), `RandomDomainSampler` (with torchreid's default of one
    /// camera per batch).
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "SequentialSampler" | "sequential" => Ok(Sampler::Sequential),
            "RandomSampler" | "random" => Ok(Sampler::Random),
            "RandomIdentitySampler" | "random_identity" => {
                Ok(Sampler::RandomIdentity { instances: 4 })
            }
            "RandomDomainSampler" | "random_domain" => Ok(Sampler::RandomDomain { domains: 1 }),
            other => Err(Error::InvalidInput(format!(
                "unknown sampler `{other}`; expected SequentialSampler, RandomSampler, \
                 RandomIdentitySampler or RandomDomainSampler"
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
            Sampler::RandomDomain { domains } => {
                let cameras: Vec<i64> = samples.iter().map(|s| s.camera as i64).collect();
                balanced_batches(&cameras, batch_size, domains, rng)
            }
        }
    }
}

/// torchreid's `RandomDomainSampler` over `keys` (each index's domain): every batch takes
/// `groups` distinct domains at random (0: all of them) and `batch_size / groups` of each
/// domain's remaining indices at random; sampling stops after the batch in which a domain is
/// left with fewer than that. torchreid fails inside `random.sample` where a domain has too few
/// images to begin with; here that is an error up front.
fn balanced_batches(
    keys: &[i64],
    batch_size: usize,
    groups: usize,
    rng: &mut Rng,
) -> Result<Vec<usize>> {
    let mut by_key: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, &key) in keys.iter().enumerate() {
        by_key.entry(key).or_default().push(i);
    }
    let groups = if groups == 0 { by_key.len() } else { groups };
    if groups > by_key.len() || batch_size == 0 || !batch_size.is_multiple_of(groups) {
        return Err(Error::InvalidInput(format!(
            "RandomDomainSampler: batches of {batch_size} from {groups} of {} cameras: the \
             cameras per batch must exist and divide the batch size",
            by_key.len()
        )));
    }
    let per_group = batch_size / groups;
    if let Some((key, indices)) = by_key.iter().find(|(_, v)| v.len() < per_group) {
        return Err(Error::InvalidInput(format!(
            "RandomDomainSampler: camera {key} has {} images, fewer than the {per_group} a \
             batch takes from each",
            indices.len()
        )));
    }
    let mut domains: Vec<i64> = by_key.keys().copied().collect();
    let mut order = Vec::new();
    loop {
        rng.shuffle(&mut domains);
        let mut short = false;
        for key in &domains[..groups] {
            let pool = by_key.get_mut(key).expect("a drawn domain");
            rng.shuffle(pool);
            order.extend(pool.drain(pool.len() - per_group..));
            short |= pool.len() < per_group;
        }
        if short {
            return Ok(order);
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

    /// torchreid's `RandomDomainSampler`: every batch holds `domains` cameras with the same
    /// number of images each, no image twice in an epoch, and the epoch ends with the batch in
    /// which a camera ran short of a batch's share (never earlier).
    #[test]
    fn domain_batches_balance_cameras() {
        let mut samples = Vec::new();
        for (camera, count) in [(0, 13), (1, 9), (2, 20), (3, 6)] {
            for i in 0..count {
                samples.push(Sample {
                    path: format!("{camera}_{i}.jpg").into(),
                    pid: i as i64,
                    camera,
                });
            }
        }
        for seed in 0..20 {
            let sampler = Sampler::RandomDomain { domains: 2 };
            let order = sampler.epoch(&samples, 6, &mut Rng::new(seed)).unwrap();
            assert!(order.len().is_multiple_of(6));
            let mut seen = std::collections::BTreeSet::new();
            assert!(order.iter().all(|i| seen.insert(*i)), "an image twice");
            let mut left: BTreeMap<i32, usize> = BTreeMap::new();
            for s in &samples {
                *left.entry(s.camera).or_default() += 1;
            }
            let batches: Vec<&[usize]> = order.chunks(6).collect();
            for (b, batch) in batches.iter().enumerate() {
                let mut per: BTreeMap<i32, usize> = BTreeMap::new();
                for &i in *batch {
                    *per.entry(samples[i].camera).or_default() += 1;
                }
                assert_eq!(per.len(), 2, "{per:?}");
                assert!(per.values().all(|&n| n == 3), "{per:?}");
                for (camera, n) in &per {
                    *left.get_mut(camera).unwrap() -= n;
                }
                let short = per.keys().any(|c| left[c] < 3);
                assert_eq!(short, b + 1 == batches.len(), "seed {seed}, batch {b}");
            }
        }
        let all = Sampler::RandomDomain { domains: 0 };
        let order = all.epoch(&samples, 8, &mut Rng::new(1)).unwrap();
        assert!(order.chunks(8).all(|b| b.len() == 8));
        // Batches the cameras cannot fill are refused.
        let three = Sampler::RandomDomain { domains: 3 };
        assert!(three.epoch(&samples, 8, &mut Rng::new(1)).is_err());
        let five = Sampler::RandomDomain { domains: 5 };
        assert!(five.epoch(&samples, 10, &mut Rng::new(1)).is_err());
        let big = Sampler::RandomDomain { domains: 1 };
        assert!(
            big.epoch(&samples, 8, &mut Rng::new(1)).is_err(),
            "camera 3 has 6"
        );
    }

    /// The same sampler by distribution against torchreid's `RandomDomainSampler` over 4,000
    /// seeds (`tests/fixtures/make_sampler_fixtures.py`): the mean epoch length and each
    /// camera's mean share, within four standard errors of the difference.
    #[test]
    fn domain_batches_are_distributed_as_torchreids() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/samplers/domain.json"
        );
        let fixture: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let number = |key: &str| fixture[key].as_f64().unwrap();
        let counts: Vec<usize> = fixture["counts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_u64().unwrap() as usize)
            .collect();
        let mut samples = Vec::new();
        for (camera, &count) in counts.iter().enumerate() {
            samples.extend((0..count).map(|i| Sample {
                path: format!("{camera}_{i}.jpg").into(),
                pid: i as i64,
                camera: camera as i32,
            }));
        }
        let runs = number("runs") as usize;
        let sampler = Sampler::RandomDomain {
            domains: number("domains") as usize,
        };
        let mut lengths = Vec::new();
        let mut per_camera = vec![0usize; counts.len()];
        for seed in 0..runs {
            let order = sampler
                .epoch(
                    &samples,
                    number("batch_size") as usize,
                    &mut Rng::new(seed as u64),
                )
                .unwrap();
            lengths.push(order.len() as f64);
            for i in order {
                per_camera[samples[i].camera as usize] += 1;
            }
        }
        let mean = lengths.iter().sum::<f64>() / runs as f64;
        let error = number("length_std") * (2.0 / runs as f64).sqrt();
        let want = number("length_mean");
        assert!(
            (mean - want).abs() < 4.0 * error,
            "mean length {mean}, torchreid's {want}"
        );
        for (camera, want) in fixture["per_camera_mean"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            let (ours, want) = (
                per_camera[camera] as f64 / runs as f64,
                want.as_f64().unwrap(),
            );
            assert!(
                (ours - want).abs() < 4.0 * error,
                "camera {camera}: {ours} vs {want}"
            );
        }
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
