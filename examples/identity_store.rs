//! Global identities for synthetic multi-camera tracks: how well the identity store's
//! identities match the people, with and without the camera topology (the README's table).
//!
//!     cargo run --example identity_store [-- PEOPLE [FAR [NOISE [SHIFT]]]]
//!
//! The scenario (tests/gallery/tracks.rs): people walk a corridor of 8 cameras, 3–6 visits
//! each, 30–90 s between neighbouring cameras; a fifth of them are look-alikes of another. The
//! threshold is calibrated on 80 other people at the false-accept rate FAR (default 1e-3).

#[path = "../tests/gallery/tracks.rs"]
mod tracks;

use reid::identity_store::{IdentityStore, MatchingConfig};

fn main() -> reid::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: f64| {
        args.get(i)
            .map_or(default, |a| a.parse().expect("a number"))
    };
    let base = tracks::Scenario::corridor();
    let scenario = tracks::Scenario {
        people: arg(0, base.people as f64) as usize,
        noise: arg(2, base.noise),
        camera_shift: arg(3, base.camera_shift),
        ..base
    };
    let far = arg(1, 1e-3);
    let tracks = tracks::simulate(&scenario);
    let people: Vec<usize> = tracks.iter().map(|t| t.person).collect();
    let (vectors, identities) = tracks::calibration_set(&scenario, 80);
    let (min_transit_seconds, links) = tracks::corridor_topology(scenario.cameras);
    println!(
        "{} people, {} tracks on {} cameras; threshold calibrated at FAR {far}",
        scenario.people,
        tracks.len(),
        scenario.cameras
    );
    println!("| topology | IDF1 | pair precision | pair recall | identities | time |");
    println!("|---|---:|---:|---:|---:|---:|");
    for topology in [false, true] {
        let config = MatchingConfig {
            min_transit_seconds: if topology { min_transit_seconds } else { 0.0 },
            links: if topology { links.clone() } else { vec![] },
            ..MatchingConfig::default()
        };
        let store = IdentityStore::new(scenario.dim, config)?;
        let calibration = store.calibrate(&vectors, &identities, far)?;
        let started = std::time::Instant::now();
        let assigned = tracks::assign(&store, &tracks);
        let elapsed = started.elapsed();
        let s = tracks::score(&people, &assigned);
        println!(
            "| {} | {:.3} | {:.3} | {:.3} | {} for {} people | {:.0} ms (threshold {:.3}, TAR {:.3}) |",
            if topology { "corridor" } else { "none" },
            s.idf1,
            s.pair_precision,
            s.pair_recall,
            s.identities,
            s.people,
            elapsed.as_secs_f64() * 1e3,
            calibration.threshold,
            calibration.tar
        );
    }
    Ok(())
}
