//! deep-object-reid's learning-rate schedules and early stopping, from its config keys, against
//! the rates and stops of its own `lr_scheduler.py` driven as its engine drives it
//! (`tests/fixtures/make_dor_schedule_fixtures.py`).

use std::collections::BTreeMap;

use reid::train::early_stop::{judge, should_stop};
use reid::train::schedule::LrSchedule;
use serde::Deserialize;

use crate::common::fixture;

#[derive(Deserialize)]
struct Case {
    lr: f64,
    max_epoch: usize,
    steps_per_epoch: usize,
    losses: Vec<f64>,
    accuracies: Vec<f64>,
    #[serde(flatten)]
    keys: BTreeMap<String, serde_json::Value>,
    expected: Expected,
}

#[derive(Deserialize)]
struct Expected {
    rates: Vec<f64>,
    stopped_after: usize,
    best_epoch: usize,
}

fn cases() -> BTreeMap<String, Case> {
    let text = std::fs::read_to_string(fixture("train/dor_schedules.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The case's `train.*` keys as `reid train` overrides.
fn overrides(case: &Case) -> Vec<String> {
    let mut out = vec![
        format!("train.lr={}", case.lr),
        format!("train.max_epoch={}", case.max_epoch),
        "test.eval_freq=1".to_string(),
    ];
    for (key, value) in &case.keys {
        out.push(format!("train.{key}={value}"));
    }
    out
}

/// Every step's rate, the epoch the run stops after and its best epoch, as reid's engine
/// decides them (an evaluation every epoch scoring the case's accuracy).
fn replay(case: &Case) -> (Vec<f64>, usize, usize) {
    let config = reid::config::load_train_config(None, &overrides(case)).unwrap();
    let mut schedule = LrSchedule::new(
        config.schedule.policy.clone(),
        config.schedule.lr,
        config.schedule.warmup,
    )
    .unwrap();
    let steps = case.steps_per_epoch;
    let (mut rates, mut best, mut since, mut best_epoch) = (vec![], None, 0, 0);
    for epoch in 0..case.max_epoch {
        rates.extend((0..steps).map(|step| schedule.rate(epoch, step, steps)));
        let decayed = schedule.past_peak(epoch, steps);
        let score = case.accuracies[epoch];
        schedule.end_epoch(epoch, case.losses[epoch], Some(score));
        let after_decay = config.eval.early_stop_after_decay;
        if judge(&mut best, &mut since, score, after_decay, decayed) {
            best_epoch = epoch + 1;
        }
        if should_stop(since, config.eval.early_stop_patience) {
            return (rates, epoch + 1, best_epoch);
        }
    }
    (rates, case.max_epoch, best_epoch)
}

#[test]
fn rates_and_stops_match_deep_object_reid() {
    let cases = cases();
    assert!(cases.len() >= 10);
    for (name, case) in &cases {
        let (rates, stopped_after, best_epoch) = replay(case);
        let want = &case.expected;
        assert_eq!(
            (stopped_after, best_epoch),
            (want.stopped_after, want.best_epoch),
            "{name}: stopped after / best epoch"
        );
        assert_eq!(rates.len(), want.rates.len(), "{name}: steps run");
        for (i, (got, want)) in rates.iter().zip(&want.rates).enumerate() {
            assert!(
                (got - want).abs() <= 1e-9 * want.abs() + 1e-15,
                "{name} step {i} (epoch {}): {got} vs {want}",
                i / case.steps_per_epoch
            );
        }
    }
    // The cases reach what they are there for: plateau cuts, the floor, a stop before the end.
    let stopped = |n: &str| cases[n].expected.stopped_after < cases[n].max_epoch;
    assert!(stopped("warmup_plateau_loss") && stopped("warmup_plateau_accuracy"));
    let floor = &cases["plateau_floor"];
    let last = floor.expected.rates.last().unwrap();
    assert!((last - floor.lr / 10.0).abs() < 1e-12, "floor {last}");
}

#[test]
fn schedule_keys_that_cannot_work_are_refused() {
    // Refused when the config is read, or at the latest when a run builds its schedule and
    // optimizer from it.
    let refused = |keys: &[&str]| {
        let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        let config = match reid::config::load_train_config(None, &keys) {
            Ok(config) => config,
            Err(e) => return e.to_string(),
        };
        let s = &config.schedule;
        if let Err(e) = LrSchedule::new(s.policy.clone(), s.lr, s.warmup) {
            return e.to_string();
        }
        match config.optimizer.build() {
            Ok(_) => panic!("{keys:?} accepted"),
            Err(e) => e.to_string(),
        }
    };
    let e = refused(&["train.lr_scheduler=warmup"]);
    assert!(e.contains("base_scheduler"), "{e}");
    let e = refused(&["train.base_scheduler=cosine"]);
    assert!(e.contains("only lr_scheduler: warmup"), "{e}");
    let e = refused(&["train.lr_scheduler=warmup", "train.base_scheduler=onecycle"]);
    assert!(e.contains("onecycle"), "{e}");
    let e = refused(&["train.target_metric=map"]);
    assert!(e.contains("train_loss or test_acc"), "{e}");
    let e = refused(&["train.early_stopping=true", "train.early_stop_patience=3"]);
    assert!(e.contains("keep one"), "{e}");
    let e = refused(&["train.correct_batch_size=true"]);
    assert!(e.contains("correct_batch_size"), "{e}");
    let e = refused(&["train.lr_scheduler=cosine_cycle", "train.cycle_mult=0.5"]);
    assert!(e.contains("cycle_mult"), "{e}");
    let e = refused(&["train.nbd=true", "train.optim=adamw"]);
    assert!(e.contains("adamw"), "{e}");
}

/// The engine runs a per-step schedule step by step: deep-object-reid's one-cycle, read from its
/// keys, moves the rate within an epoch, every step trains at the schedule's rate for it, and
/// the history logs each epoch's first rate.
#[test]
fn a_run_moves_a_per_step_rate_after_every_batch() {
    use reid::train::{Event, train};
    let dir = tempfile::tempdir().unwrap();
    let root = crate::runs::dataset(dir.path());
    let mut config = crate::runs::config(&root, &dir.path().join("run"), 2);
    let keys = ["train.lr_scheduler=onecycle", "train.max_epoch=2"].map(String::from);
    let read = reid::config::load_train_config(None, &keys).unwrap();
    config.schedule.policy = read.schedule.policy;
    config.schedule.warmup = read.schedule.warmup;
    config.eval.eval_freq = 0;
    config.export_onnx = false;
    let mut seen = vec![];
    let report = train(&config, &mut |e| {
        if let Event::Step {
            epoch,
            step,
            steps,
            lr,
            ..
        } = e
        {
            seen.push((*epoch, *step, *steps, *lr));
        }
        true
    })
    .unwrap();
    let schedule = LrSchedule::new(config.schedule.policy.clone(), config.schedule.lr, 0).unwrap();
    assert!(seen.len() >= 4, "{seen:?}");
    for &(epoch, step, steps, lr) in &seen {
        let want = schedule.rate(epoch - 1, step - 1, steps);
        assert!(
            (lr - want).abs() < 1e-15,
            "epoch {epoch} step {step}: {lr} vs {want}"
        );
    }
    let first_epoch: Vec<f64> = seen.iter().filter(|s| s.0 == 1).map(|s| s.3).collect();
    // It rises from lr / 100 to lr within the first epoch (the run's first 30 %), then falls.
    assert!(first_epoch[1] > first_epoch[0] * 10.0, "{first_epoch:?}");
    assert!(first_epoch.contains(&config.schedule.lr), "{first_epoch:?}");
    assert_eq!(
        report.history[1].lr,
        seen.iter().find(|s| s.0 == 2).unwrap().3
    );
}
