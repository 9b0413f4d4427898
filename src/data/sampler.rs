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
    /// torchreid's `RandomDatasetSampler`: the same as `RandomDomain` with each training set
    /// (of several `sources`) a domain.
    RandomDataset {
        /// Training sets per batch (torchreid's `num_datasets`; 0: every set).
        datasets: usize,
    },
    /// deep-object-reid's `RandomIdentitySamplerV2`: every image once an epoch — identities in
    /// random order, each one's images in random order, one after another — cut into rows of
    /// K and the rows shuffled; a row may hold the end of one identity and the start of the
    /// next. With `fill`, each identity first gets draws of its own images (with replacement)
    /// up to a multiple of K.
    RandomIdentityV2 {
        /// Images per row (K).
        instances: usize,
        /// Pad each identity to a multiple of K (`fill_instances`).
        fill: bool,
    },
    /// deep-object-reid's `RandomIdentitySamplerV3`: every identity gives the same number of
    /// images an epoch — `per_epoch` (0: the median of the identities' image counts) rounded
    /// down to a multiple of K — drawn without replacement across epochs (an identity goes
    /// through all its images before any comes again); the epoch is K images of each identity
    /// in turn, identities in random order, then the next K of each, so a batch holds
    /// B / K identities × K images.
    RandomIdentityV3 {
        /// Images per identity in a batch (K).
        instances: usize,
        /// Images per identity an epoch (`epoch_num_instances`; 0: the median count).
        per_epoch: usize,
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
            "RandomDatasetSampler" | "random_dataset" => Ok(Sampler::RandomDataset { datasets: 1 }),
            "RandomIdentitySamplerV2" => Ok(Sampler::RandomIdentityV2 {
                instances: 4,
                fill: false,
            }),
            "RandomIdentitySamplerV3" => Ok(Sampler::RandomIdentityV3 {
                instances: 4,
                per_epoch: 0,
            }),
            other => Err(Error::InvalidInput(format!(
                "unknown sampler `{other}`; expected SequentialSampler, RandomSampler, \
                 RandomIdentitySampler, RandomIdentitySamplerV2, RandomIdentitySamplerV3, \
                 RandomDomainSampler or RandomDatasetSampler"
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
        seed: u64,
        epoch: usize,
    ) -> Result<Vec<usize>> {
        let rng = &mut Rng::derive(seed, &[SAMPLER_STREAM, epoch as u64]);
        match *self {
            Sampler::RandomIdentityV2 { instances, fill } => {
                check_instances(batch_size, instances)?;
                Ok(rows_of_k(samples, instances, fill, rng))
            }
            Sampler::RandomIdentityV3 {
                instances,
                per_epoch,
            } => {
                check_instances(batch_size, instances)?;
                packages(samples, instances, per_epoch, seed, epoch, rng)
            }
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
                let kind = ("RandomDomainSampler", "camera");
                balanced_batches(&cameras, batch_size, domains, kind, rng)
            }
            Sampler::RandomDataset { datasets } => {
                let sets: Vec<i64> = samples.iter().map(|s| s.dataset as i64).collect();
                let kind = ("RandomDatasetSampler", "training set");
                balanced_batches(&sets, batch_size, datasets, kind, rng)
            }
        }
    }
}

/// The stream an epoch's order is drawn from, after the seed and the epoch.
const SAMPLER_STREAM: u64 = 0x5341_4d50;

/// The training set's indices grouped by identity, identities in increasing order.
fn by_identity(samples: &[Sample]) -> BTreeMap<i64, Vec<usize>> {
    let mut by_pid: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, s) in samples.iter().enumerate() {
        by_pid.entry(s.pid).or_default().push(i);
    }
    by_pid
}

fn check_instances(batch_size: usize, instances: usize) -> Result<()> {
    if instances == 0 || batch_size < instances || !batch_size.is_multiple_of(instances) {
        return Err(Error::InvalidInput(format!(
            "batch size {batch_size} must be a positive multiple of the instances per identity \
             ({instances})"
        )));
    }
    Ok(())
}

/// `RandomIdentitySamplerV2`'s epoch (see [`Sampler::RandomIdentityV2`]). deep-object-reid pads
/// an identity of n images with n mod K draws, which makes a multiple of K only by chance; the
/// padding here is K − n mod K, what the option's name promises.
fn rows_of_k(samples: &[Sample], k: usize, fill: bool, rng: &mut Rng) -> Vec<usize> {
    let mut pids: Vec<Vec<usize>> = by_identity(samples).into_values().collect();
    rng.shuffle(&mut pids);
    let mut stream = Vec::with_capacity(samples.len());
    for mut images in pids {
        rng.shuffle(&mut images);
        let short = (k - images.len() % k) % k;
        let padding: Vec<usize> = if fill {
            (0..short).map(|_| *rng.pick(&images)).collect()
        } else {
            Vec::new()
        };
        stream.extend(images);
        stream.extend(padding);
    }
    let mut rows: Vec<&[usize]> = stream.chunks_exact(k).collect();
    rng.shuffle(&mut rows);
    rows.concat()
}

/// `RandomIdentitySamplerV3`'s epoch (see [`Sampler::RandomIdentityV3`]). Each identity's
/// images form an endless stream of random permutations, one after another, seeded by the run's
/// seed and the identity: epoch e takes the stream's e-th slice, so an identity goes through all
/// of its images before any repeats, and a resumed run continues where it stopped without the
/// sampler keeping state between epochs (deep-object-reid keeps the rest of the permutation).
fn packages(
    samples: &[Sample],
    k: usize,
    per_epoch: usize,
    seed: u64,
    epoch: usize,
    rng: &mut Rng,
) -> Result<Vec<usize>> {
    let by_pid = by_identity(samples);
    let per_epoch = if per_epoch > 0 {
        per_epoch
    } else {
        let mut counts: Vec<usize> = by_pid.values().map(Vec::len).collect();
        counts.sort_unstable();
        // numpy's median (the mean of the middle two), truncated as deep-object-reid does.
        let n = counts.len();
        if n == 0 {
            0
        } else if n % 2 == 1 {
            counts[n / 2]
        } else {
            (counts[n / 2 - 1] + counts[n / 2]) / 2
        }
    };
    let groups = per_epoch / k;
    if groups == 0 {
        return Err(Error::InvalidInput(format!(
            "RandomIdentitySamplerV3: {per_epoch} images per identity an epoch make no group \
             of {k}"
        )));
    }
    let take = groups * k;
    let mut pids: Vec<(i64, Vec<usize>)> = by_pid.into_iter().collect();
    rng.shuffle(&mut pids);
    let drawn: Vec<Vec<usize>> = pids
        .iter()
        .map(|(pid, images)| {
            let start = epoch * take;
            let mut out = Vec::with_capacity(take);
            let n = images.len();
            let mut cycle = start / n;
            let mut at = start % n;
            let spans = at + take > n;
            while out.len() < take {
                let mut permutation = images.clone();
                let mut stream = Rng::derive(seed, &[SAMPLER_STREAM, *pid as u64, cycle as u64]);
                stream.shuffle(&mut permutation);
                let wanted = take - out.len();
                let end = (at + wanted).min(n);
                out.extend_from_slice(&permutation[at..end]);
                cycle += 1;
                at = 0;
            }
            if spans {
                // The rest of one permutation and the start of the next, mixed, as
                // deep-object-reid shuffles a refilled share: a repeat may land in any group.
                Rng::derive(seed, &[SAMPLER_STREAM, *pid as u64, !(epoch as u64)])
                    .shuffle(&mut out);
            }
            out
        })
        .collect();
    let mut order = Vec::with_capacity(take * drawn.len());
    for g in 0..groups {
        for images in &drawn {
            order.extend_from_slice(&images[g * k..(g + 1) * k]);
        }
    }
    Ok(order)
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
    (sampler, domain): (&str, &str),
    rng: &mut Rng,
) -> Result<Vec<usize>> {
    let mut by_key: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, &key) in keys.iter().enumerate() {
        by_key.entry(key).or_default().push(i);
    }
    let groups = if groups == 0 { by_key.len() } else { groups };
    if groups > by_key.len() || batch_size == 0 || !batch_size.is_multiple_of(groups) {
        return Err(Error::InvalidInput(format!(
            "{sampler}: batches of {batch_size} from {groups} of {} {domain}s: the {domain}s \
             per batch must exist and divide the batch size",
            by_key.len()
        )));
    }
    let per_group = batch_size / groups;
    if let Some((key, indices)) = by_key.iter().find(|(_, v)| v.len() < per_group) {
        return Err(Error::InvalidInput(format!(
            "{sampler}: {domain} {key} has {} images, fewer than the {per_group} a batch \
             takes from each",
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
    check_instances(batch_size, instances)?;
    let per_batch = batch_size / instances;
    let by_pid = by_identity(samples);
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

    /// A reference sampler's statistics (tests/fixtures/samplers/NAME) and its group sizes.
    fn reference(name: &str) -> (serde_json::Value, Vec<usize>) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/samplers")
            .join(name);
        let fixture: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let counts = fixture["counts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_u64().unwrap() as usize)
            .collect();
        (fixture, counts)
    }

    fn data(counts: &[usize]) -> Vec<Sample> {
        counts
            .iter()
            .enumerate()
            .flat_map(|(pid, &n)| {
                (0..n).map(move |i| Sample {
                    path: format!("{pid}_{i}.jpg").into(),
                    pid: pid as i64,
                    camera: 0,
                    dataset: 0,
                })
            })
            .collect()
    }

    #[test]
    fn identity_batches_are_p_by_k() {
        let samples = data(&[9, 4, 2, 7, 5, 12, 1, 8]);
        let sampler = Sampler::RandomIdentity { instances: 4 };
        let order = sampler.epoch(&samples, 16, 5, 0).unwrap();
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
        assert_eq!(order, sampler.epoch(&samples, 16, 5, 0).unwrap());
        assert_ne!(order, sampler.epoch(&samples, 16, 6, 0).unwrap());
        assert!(sampler.epoch(&samples, 10, 5, 0).is_err());
        assert!(sampler.epoch(&data(&[4, 4]), 16, 5, 0).is_err());
    }

    /// deep-object-reid's `RandomIdentitySamplerV2` and `V3`: their invariants, and by
    /// distribution against deep-object-reid's own samplers (tests/fixtures/samplers/
    /// identity_v2_v3.json, `make_dor_sampler_fixtures.py`).
    #[test]
    fn identity_samplers_v2_and_v3_behave_as_deep_object_reids() {
        let (fixture, counts) = reference("identity_v2_v3.json");
        let number = |key: &str| fixture[key].as_f64().unwrap();
        let samples = data(&counts);
        let runs = number("runs") as usize;
        let within = |what: &str, got: &[f64], mean: f64, std: f64| {
            let n = got.len() as f64;
            let m = got.iter().sum::<f64>() / n;
            let tolerance = (4.0 * std / n.sqrt()).max(1e-9);
            assert!(
                (m - mean).abs() <= tolerance,
                "{what}: {m} vs {mean} ± {tolerance}"
            );
        };

        // V2: every image once, rows of K, and rows holding two identities as often.
        let v2 = Sampler::RandomIdentityV2 {
            instances: 4,
            fill: false,
        };
        let mut straddling = Vec::new();
        for seed in 0..runs as u64 {
            let order = v2.epoch(&samples, 8, seed, 0).unwrap();
            assert_eq!(order.len(), samples.len() - samples.len() % 4);
            let mut seen = order.clone();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen.len(), order.len(), "no image twice");
            let rows: Vec<&[usize]> = order.chunks(4).collect();
            let two = rows
                .iter()
                .filter(|r| r.iter().any(|&i| samples[i].pid != samples[r[0]].pid))
                .count();
            straddling.push(two as f64 / rows.len() as f64);
        }
        within(
            "V2 rows across identities",
            &straddling,
            number("v2_straddling_mean"),
            number("v2_straddling_std"),
        );
        // Filled: every identity a multiple of K, padded with its own images.
        let filled = Sampler::RandomIdentityV2 {
            instances: 4,
            fill: true,
        };
        let order = filled.epoch(&samples, 8, 1, 0).unwrap();
        let want: usize = counts.iter().map(|n| n.div_ceil(4) * 4).sum();
        assert_eq!(order.len(), want);
        for (pid, &n) in counts.iter().enumerate() {
            let mine: Vec<usize> = order
                .iter()
                .copied()
                .filter(|&i| samples[i].pid == pid as i64)
                .collect();
            assert_eq!(mine.len(), n.div_ceil(4) * 4);
            let distinct: std::collections::BTreeSet<_> = mine.iter().collect();
            assert_eq!(
                distinct.len(),
                n,
                "all of identity {pid}'s images, and only those"
            );
        }

        // V3: the median (5.5 → 5) gives 4 images of each identity an epoch, in groups of K
        // of one identity; over two epochs an identity draws without replacement; a group
        // repeats an image as often as deep-object-reid's.
        let v3 = Sampler::RandomIdentityV3 {
            instances: 2,
            per_epoch: 0,
        };
        let mut distinct = vec![Vec::new(); counts.len()];
        let mut repeats = Vec::new();
        for seed in 0..runs as u64 {
            let epochs: Vec<Vec<usize>> = (0..3)
                .map(|e| v3.epoch(&samples, 4, seed, e).unwrap())
                .collect();
            for order in &epochs {
                assert_eq!(order.len(), counts.len() * 4);
                for group in order.chunks(2) {
                    assert_eq!(samples[group[0]].pid, samples[group[1]].pid);
                }
            }
            for (pid, d) in distinct.iter_mut().enumerate() {
                let drawn: std::collections::BTreeSet<usize> = epochs[..2]
                    .iter()
                    .flatten()
                    .copied()
                    .filter(|&i| samples[i].pid == pid as i64)
                    .collect();
                d.push(drawn.len() as f64);
            }
            let groups: Vec<&[usize]> = epochs[2].chunks(2).collect();
            let twice = groups.iter().filter(|g| g[0] == g[1]).count();
            repeats.push(twice as f64 / groups.len() as f64);
        }
        let means = fixture["v3_distinct_mean"].as_array().unwrap();
        let stds = fixture["v3_distinct_std"].as_array().unwrap();
        for (pid, d) in distinct.iter().enumerate() {
            let (mean, std) = (means[pid].as_f64().unwrap(), stds[pid].as_f64().unwrap());
            within(
                &format!("V3 distinct images of identity {pid}"),
                d,
                mean,
                std,
            );
        }
        within(
            "V3 groups repeating an image",
            &repeats,
            number("v3_repeat_mean"),
            number("v3_repeat_std"),
        );
        assert!(
            Sampler::RandomIdentityV3 {
                instances: 8,
                per_epoch: 0
            }
            .epoch(&samples, 8, 1, 0)
            .is_err(),
            "5 images an epoch make no group of 8"
        );
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
                    dataset: 0,
                });
            }
        }
        for seed in 0..20 {
            let sampler = Sampler::RandomDomain { domains: 2 };
            let order = sampler.epoch(&samples, 6, seed, 0).unwrap();
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
        let order = all.epoch(&samples, 8, 1, 0).unwrap();
        assert!(order.chunks(8).all(|b| b.len() == 8));
        // Batches the cameras cannot fill are refused.
        let three = Sampler::RandomDomain { domains: 3 };
        assert!(three.epoch(&samples, 8, 1, 0).is_err());
        let five = Sampler::RandomDomain { domains: 5 };
        assert!(five.epoch(&samples, 10, 1, 0).is_err());
        let big = Sampler::RandomDomain { domains: 1 };
        assert!(big.epoch(&samples, 8, 1, 0).is_err(), "camera 3 has 6");
    }

    /// torchreid's `RandomDatasetSampler` is its `RandomDomainSampler` keyed on the training
    /// set: the same order where each image's set is its camera.
    #[test]
    fn dataset_batches_are_domain_batches_over_the_training_sets() {
        let samples: Vec<Sample> = [(0, 30), (1, 18), (2, 12)]
            .iter()
            .flat_map(|&(set, count)| {
                (0..count).map(move |i| Sample {
                    path: format!("{set}_{i}.jpg").into(),
                    pid: i as i64,
                    camera: set as i32,
                    dataset: set,
                })
            })
            .collect();
        for seed in 0..5 {
            let by_set = Sampler::RandomDataset { datasets: 2 }.epoch(&samples, 6, seed, 1);
            let by_camera = Sampler::RandomDomain { domains: 2 }.epoch(&samples, 6, seed, 1);
            assert_eq!(by_set.unwrap(), by_camera.unwrap());
        }
        let err = Sampler::RandomDataset { datasets: 4 }
            .epoch(&samples, 8, 0, 0)
            .unwrap_err();
        assert!(err.to_string().contains("training set"), "{err}");
        assert_eq!(
            "RandomDatasetSampler".parse::<Sampler>().unwrap(),
            Sampler::RandomDataset { datasets: 1 }
        );
    }

    /// The same sampler by distribution against torchreid's `RandomDomainSampler` over 4,000
    /// seeds (`tests/fixtures/make_sampler_fixtures.py`): the mean epoch length and each
    /// camera's mean share, within four standard errors of the difference.
    #[test]
    fn domain_batches_are_distributed_as_torchreids() {
        let (fixture, counts) = reference("domain.json");
        let number = |key: &str| fixture[key].as_f64().unwrap();
        let mut samples = Vec::new();
        for (camera, &count) in counts.iter().enumerate() {
            samples.extend((0..count).map(|i| Sample {
                path: format!("{camera}_{i}.jpg").into(),
                pid: i as i64,
                camera: camera as i32,
                dataset: 0,
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
                .epoch(&samples, number("batch_size") as usize, seed as u64, 0)
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
        let mut order = Sampler::Random.epoch(&samples, 4, 1, 0).unwrap();
        assert_ne!(order, (0..9).collect::<Vec<_>>());
        order.sort();
        assert_eq!(order, (0..9).collect::<Vec<_>>());
        assert_eq!(
            Sampler::Sequential.epoch(&samples, 4, 1, 0).unwrap(),
            (0..9).collect::<Vec<_>>()
        );
        assert_eq!(
            "RandomIdentitySampler".parse::<Sampler>().unwrap(),
            Sampler::RandomIdentity { instances: 4 }
        );
    }
}
