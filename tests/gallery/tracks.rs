//! Synthetic multi-camera tracks for the identity store, and the scores of its global
//! identities against the truth. Shared by the tests (tests/gallery/identity_store.rs) and the
//! evaluation example (examples/identity_store.rs).
//!
//! People walk along a corridor of cameras 0, 1, … (each a neighbour of the next), staying in
//! each camera's view a while and taking 30–90 s to reach the next one. Each visit is one
//! track whose crops' embeddings are the person's appearance, plus the camera's own shift
//! (lighting, angle), plus noise; some people have a look-alike. Tracks are reported when they
//! end, in time order.

#![allow(dead_code)]

use std::collections::HashMap;

/// A reproducible generator (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.uniform().max(1e-300);
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub people: usize,
    pub cameras: usize,
    pub dim: usize,
    /// Visits per person, at least 1.
    pub visits: std::ops::RangeInclusive<usize>,
    /// People start within this many seconds.
    pub horizon: f64,
    /// Length of the camera's shift of every embedding it sees.
    pub camera_shift: f64,
    /// Per-crop noise, per dimension (relative to a unit appearance).
    pub noise: f64,
    /// Share of people who have a look-alike (another person at this distance per dimension).
    pub look_alikes: f64,
    pub look_alike_distance: f64,
    pub seed: u64,
}

impl Scenario {
    /// A corridor of 8 cameras and 120 people, a fifth of them look-alikes of another.
    pub fn corridor() -> Self {
        Self {
            people: 120,
            cameras: 8,
            dim: 64,
            visits: 3..=6,
            horizon: 900.0,
            camera_shift: 0.2,
            noise: 0.04,
            look_alikes: 0.2,
            look_alike_distance: 0.06,
            seed: 1,
        }
    }
}

/// One simulated track.
#[derive(Debug, Clone)]
pub struct SimTrack {
    pub person: usize,
    pub camera: i32,
    pub track: u64,
    pub start: f64,
    pub end: f64,
    /// `n × dim` crop embeddings.
    pub crops: Vec<f32>,
}

fn unit(v: &mut [f64]) {
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
}

/// `n` appearance vectors (unit length) for people of one scenario.
fn appearances(s: &Scenario, rng: &mut Rng) -> Vec<Vec<f64>> {
    let mut out: Vec<Vec<f64>> = Vec::with_capacity(s.people);
    for p in 0..s.people {
        let twin_of =
            (p % 2 == 1 && (p as f64) < 2.0 * s.look_alikes * s.people as f64).then(|| p - 1);
        let mut v: Vec<f64> = match twin_of {
            Some(q) => out[q]
                .iter()
                .map(|x| x + s.look_alike_distance * rng.normal())
                .collect(),
            None => (0..s.dim).map(|_| rng.normal()).collect(),
        };
        unit(&mut v);
        out.push(v);
    }
    out
}

/// The crops of one visit: 3 to 8 noisy, camera-shifted views of `look`.
fn crops(s: &Scenario, look: &[f64], shift: &[f64], rng: &mut Rng) -> Vec<f32> {
    let n = 3 + rng.below(6);
    (0..n)
        .flat_map(|_| {
            look.iter()
                .zip(shift)
                .map(|(a, b)| (a + b + s.noise * rng.normal()) as f32)
                .collect::<Vec<f32>>()
        })
        .collect()
}

/// The camera shifts of a scenario.
fn shifts(s: &Scenario, rng: &mut Rng) -> Vec<Vec<f64>> {
    (0..s.cameras)
        .map(|_| {
            let mut v: Vec<f64> = (0..s.dim).map(|_| rng.normal()).collect();
            unit(&mut v);
            v.iter().map(|x| x * s.camera_shift).collect()
        })
        .collect()
}

/// Every track of the scenario, in the order they end.
pub fn simulate(s: &Scenario) -> Vec<SimTrack> {
    let mut rng = Rng(s.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let looks = appearances(s, &mut rng);
    let shifts = shifts(s, &mut rng);
    let mut next_track = vec![1u64; s.cameras];
    let mut tracks = Vec::new();
    for (person, look) in looks.iter().enumerate() {
        let mut camera = rng.below(s.cameras);
        let mut t = rng.between(0.0, s.horizon);
        let visits = s.visits.start() + rng.below(s.visits.end() - s.visits.start() + 1);
        for _ in 0..visits {
            let dwell = rng.between(5.0, 20.0);
            tracks.push(SimTrack {
                person,
                camera: camera as i32,
                track: next_track[camera],
                start: t,
                end: t + dwell,
                crops: crops(s, look, &shifts[camera], &mut rng),
            });
            next_track[camera] += 1;
            t += dwell + rng.between(30.0, 90.0);
            camera = match camera {
                0 => 1,
                c if c + 1 == s.cameras => c - 1,
                c if rng.below(2) == 0 => c - 1,
                c => c + 1,
            };
        }
    }
    tracks.sort_by(|a, b| a.end.total_cmp(&b.end));
    tracks
}

/// Labelled crops of `people` people who are not in the tracks (another seed), for
/// calibrating the threshold: one aggregated embedding per visit, as the store compares them.
pub fn calibration_set(s: &Scenario, people: usize) -> (Vec<f32>, Vec<u64>) {
    let other = Scenario {
        people,
        seed: s.seed + 1000,
        ..s.clone()
    };
    let mut vectors = Vec::new();
    let mut identities = Vec::new();
    for t in simulate(&other) {
        let mut mean = vec![0.0f64; s.dim];
        for crop in t.crops.chunks(s.dim) {
            let n = crop
                .iter()
                .map(|&v| v as f64 * v as f64)
                .sum::<f64>()
                .sqrt();
            for (m, &v) in mean.iter_mut().zip(crop) {
                *m += v as f64 / n;
            }
        }
        vectors.extend(mean.iter().map(|&v| v as f32));
        identities.push(t.person as u64);
    }
    (vectors, identities)
}

/// How well global identities match the truth, over tracks.
#[derive(Debug, Clone, Copy)]
pub struct Scores {
    /// Tracks whose identity maps to their person under the best one-to-one mapping of
    /// identities to people, over all tracks (IDF1 when every track counts once: ID precision
    /// and ID recall are then equal).
    pub idf1: f64,
    /// Of the track pairs given one identity, the share that are one person.
    pub pair_precision: f64,
    /// Of the track pairs of one person, the share given one identity.
    pub pair_recall: f64,
    pub identities: usize,
    pub people: usize,
}

/// Scores of `assigned` identities for tracks of `people`.
pub fn score(people: &[usize], assigned: &[u64]) -> Scores {
    let mut person_index = HashMap::new();
    let mut identity_index = HashMap::new();
    for (&p, &a) in people.iter().zip(assigned) {
        let n = person_index.len();
        person_index.entry(p).or_insert(n);
        let n = identity_index.len();
        identity_index.entry(a).or_insert(n);
    }
    let size = person_index.len().max(identity_index.len());
    let mut counts = vec![vec![0i64; size]; size];
    for (&p, &a) in people.iter().zip(assigned) {
        counts[identity_index[&a]][person_index[&p]] += 1;
    }
    let matched = max_assignment(&counts);
    let pairs = |labels: &mut dyn Iterator<Item = (usize, u64)>| -> (u64, u64, u64) {
        let items: Vec<(usize, u64)> = labels.collect();
        let (mut same_both, mut same_identity, mut same_person) = (0, 0, 0);
        for i in 0..items.len() {
            for j in i + 1..items.len() {
                let p = items[i].0 == items[j].0;
                let a = items[i].1 == items[j].1;
                same_both += (p && a) as u64;
                same_identity += a as u64;
                same_person += p as u64;
            }
        }
        (same_both, same_identity, same_person)
    };
    let (both, same_identity, same_person) =
        pairs(&mut people.iter().copied().zip(assigned.iter().copied()));
    let ratio = |a: u64, b: u64| if b == 0 { 1.0 } else { a as f64 / b as f64 };
    Scores {
        idf1: matched as f64 / people.len() as f64,
        pair_precision: ratio(both, same_identity),
        pair_recall: ratio(both, same_person),
        identities: identity_index.len(),
        people: person_index.len(),
    }
}

/// The largest total of `weights[row][column]` over one-to-one pairings of rows and columns
/// (a square matrix): the Hungarian algorithm on costs `max - weight`, O(n³).
pub fn max_assignment(weights: &[Vec<i64>]) -> i64 {
    let n = weights.len();
    if n == 0 {
        return 0;
    }
    let top = weights.iter().flatten().copied().max().unwrap_or(0);
    let cost = |i: usize, j: usize| top - weights[i][j];
    // Potentials u (rows), v (columns); column_of_row via `owner` (1-based, 0 = free).
    let (mut u, mut v) = (vec![0i64; n + 1], vec![0i64; n + 1]);
    let mut owner = vec![0usize; n + 1];
    let mut way = vec![0usize; n + 1];
    for row in 1..=n {
        owner[0] = row;
        let mut column = 0;
        let mut least = vec![i64::MAX; n + 1];
        let mut used = vec![false; n + 1];
        loop {
            used[column] = true;
            let i = owner[column];
            let (mut delta, mut next) = (i64::MAX, 0);
            for j in 1..=n {
                if !used[j] {
                    let reduced = cost(i - 1, j - 1) - u[i] - v[j];
                    if reduced < least[j] {
                        least[j] = reduced;
                        way[j] = column;
                    }
                    if least[j] < delta {
                        delta = least[j];
                        next = j;
                    }
                }
            }
            for j in 0..=n {
                if used[j] {
                    u[owner[j]] += delta;
                    v[j] -= delta;
                } else {
                    least[j] -= delta;
                }
            }
            column = next;
            if owner[column] == 0 {
                break;
            }
        }
        loop {
            let previous = way[column];
            owner[column] = owner[previous];
            column = previous;
            if column == 0 {
                break;
            }
        }
    }
    (1..=n).map(|j| weights[owner[j] - 1][j - 1]).sum()
}

/// Reports every track to `store` in order; returns the global identity given to each.
pub fn assign(store: &reid::identity_store::IdentityStore, tracks: &[SimTrack]) -> Vec<u64> {
    tracks
        .iter()
        .map(|t| {
            store
                .observe(&reid::identity_store::Track {
                    camera: t.camera,
                    track: t.track,
                    time: reid::gallery::TimeSpan::new(t.start, t.end).unwrap(),
                    embeddings: &t.crops,
                    quality: None,
                })
                .unwrap()
                .identity
        })
        .collect()
}

/// The corridor's topology: neighbours are linked (20 s at least between them), other
/// cameras need 60 s.
pub fn corridor_topology(cameras: usize) -> (f64, Vec<reid::identity_store::CameraLink>) {
    let links = (0..cameras as i32 - 1)
        .map(|c| reid::identity_store::CameraLink {
            cameras: [c, c + 1],
            min_seconds: 20.0,
        })
        .collect();
    (60.0, links)
}
