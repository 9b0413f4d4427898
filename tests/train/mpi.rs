//! Training across processes as the ranks of an MPI job (`reid train --distributed mpi` under
//! Open MPI's `mpirun`, two ranks over loopback TCP): the ranks train as one process whose
//! batch is cut into one chunk per device does (`device: flex,cpu`), a resumed job included, and
//! a rank that dies ends the job instead of leaving the other waiting.
//!
//! Needs Open MPI's `mpirun` (`REID_MPIRUN`, else on PATH; Debian: `openmpi-bin`); says it
//! skipped without one unless `REID_REQUIRE_MPI` is set (`.ci/run` sets it).

use crate::common;
use crate::runs::{dataset, history};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn mpirun() -> Option<PathBuf> {
    let found = std::env::var_os("REID_MPIRUN")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::split_paths(&std::env::var_os("PATH")?)
                .map(|dir| dir.join("mpirun"))
                .find(|p| p.is_file())
        });
    if found.is_none() {
        assert!(
            std::env::var_os("REID_REQUIRE_MPI").is_none(),
            "REID_REQUIRE_MPI is set but there is no mpirun (REID_MPIRUN or PATH)"
        );
        eprintln!("skipped: no mpirun (install Open MPI, e.g. Debian's openmpi-bin)");
    }
    found
}

/// `mpirun` for two local ranks over loopback TCP (shared memory is often unavailable in
/// containers), allowed to run as root as CI does, each rank free to use every core as one
/// process does: Open MPI binds each of two ranks to one core by default, and the CPU kernels
/// split their sums by the threads they have, so the last bits would differ.
fn two_ranks(mpirun: &Path) -> Command {
    let mut command = Command::new(mpirun);
    command
        .args([
            "-np",
            "2",
            "--oversubscribe",
            "--allow-run-as-root",
            "--bind-to",
            "none",
        ])
        .args([
            "--mca",
            "btl",
            "self,tcp",
            "--mca",
            "btl_tcp_if_include",
            "lo",
        ])
        .args(["--mca", "oob_tcp_if_include", "lo"]);
    command
}

/// `reid train`'s arguments: P × K batches of 2 identities × 4 images (one identity per rank).
fn train_args(root: &Path, save: &Path, epochs: usize, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "train".to_string(),
        "--root".into(),
        root.display().to_string(),
        "data.height=64".into(),
        "data.width=32".into(),
        "sampler.train_sampler=RandomIdentitySampler".into(),
        "sampler.num_instances=4".into(),
        "train.batch_size=8".into(),
        "train.optim=adam".into(),
        format!("train.max_epoch={epochs}"),
        "test.eval_freq=1".into(),
        "test.export_onnx=false".into(),
        format!("data.save_dir={}", save.display()),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn run(mut command: Command) -> Output {
    let out = command.output().unwrap();
    common::assert_success(&out);
    out
}

/// The largest difference between two checkpoints' trained weights. Their BatchNorm running
/// statistics are left out: in one process Burn averages those of the two devices' chunks, in
/// whatever order the two threads update them, where a job keeps rank 0's (so the evaluations
/// differ slightly too, and are not compared).
fn largest_difference(a: &Path, b: &Path) -> f32 {
    let device = reid::device::default_device();
    let a = reid::weights::torch_named_values(&reid::weights::load_checkpoint(a, &device).unwrap());
    let b = reid::weights::torch_named_values(&reid::weights::load_checkpoint(b, &device).unwrap());
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    a.iter()
        .filter(|(name, _)| !name.contains("running_") && !name.ends_with("num_batches_tracked"))
        .flat_map(|(name, (shape, x))| {
            let (other_shape, y) = &b[name];
            assert_eq!(shape, other_shape, "{name}");
            x.iter().zip(y).map(|(x, y)| (x - y).abs())
        })
        .fold(0.0, f32::max)
}

/// Two ranks, each reading half of every batch, end where one process ends that cuts every
/// batch in the same two halves over two devices: the same losses, the same weights. The job is stopped after one epoch and resumed (rank 0 reads the checkpoint
/// and sends it, with the optimizer's state, to rank 1), so the resumption is checked too: were
/// rank 1 to resume with a fresh Adam state, its weights would part from rank 0's and the job
/// would fail its check after the epoch.
#[test]
fn two_ranks_train_as_one_process_over_two_devices() {
    let Some(mpirun) = mpirun() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dataset(dir.path());
    let reid = env!("CARGO_BIN_EXE_reid");

    let one = dir.path().join("one");
    let mut command = Command::new(reid);
    command.args(train_args(&root, &one, 2, &["device=flex,cpu"]));
    run(command);

    let job = dir.path().join("job");
    let mut first = two_ranks(&mpirun);
    first
        .arg(reid)
        .args(train_args(&root, &job, 1, &["--distributed", "mpi"]));
    let out = run(first);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        said.matches("epoch 1 done").count(),
        1,
        "only rank 0 reports:\n{said}"
    );
    let mut resumed = two_ranks(&mpirun);
    resumed
        .arg(reid)
        .args(train_args(&root, &job, 2, &["--distributed", "mpi"]));
    let out = run(resumed);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("resumed after epoch 1"), "{said}");

    let (a, b) = (history(&one), history(&job));
    assert_eq!(a.len(), 2);
    assert_eq!(b.len(), 2);
    for (x, y) in a.iter().zip(&b) {
        let (lx, ly) = (x.loss, y.loss);
        assert!(
            (lx - ly).abs() <= 1e-5 * lx.abs().max(1.0),
            "epoch {}: loss {lx} vs {ly}",
            x.epoch
        );
    }
    let gap = largest_difference(&one.join("last/model.bpk"), &job.join("last/model.bpk"));
    assert!(
        gap <= 1e-5,
        "the job's weights differ from one process's by {gap}"
    );
}

/// The pid of the rank `rank` that `mpirun` started, once it runs.
fn rank_pid(launcher: &Child, rank: usize) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // The parent pid is the second field after the command name in parentheses.
            let parent: u32 = stat
                .rsplit(')')
                .next()?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            let environ = std::fs::read(entry.path().join("environ")).ok()?;
            let wanted = format!("OMPI_COMM_WORLD_RANK={rank}");
            let is_rank = environ.split(|&b| b == 0).any(|v| v == wanted.as_bytes());
            (parent == launcher.id() && is_rank).then_some(pid)
        })
}

/// A rank killed mid-run (SIGKILL: no chance to say goodbye) ends the job: the launcher notices
/// and ends rank 0, which would otherwise wait for rank 1 in its next all-reduce forever.
#[test]
fn a_killed_rank_ends_the_job() {
    let Some(mpirun) = mpirun() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dataset(dir.path());
    let save = dir.path().join("job");
    let mut launch = two_ranks(&mpirun);
    let mut launcher = launch
        .arg(env!("CARGO_BIN_EXE_reid"))
        .args(train_args(&root, &save, 200, &["--distributed", "mpi"]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    // Rank 0 writes config.json once the job has started.
    let victim = loop {
        assert!(Instant::now() < deadline, "the job did not start");
        assert!(
            launcher.try_wait().unwrap().is_none(),
            "the job ended early"
        );
        if save.join("config.json").is_file()
            && let Some(pid) = rank_pid(&launcher, 1)
        {
            break pid;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(500));
    let killed = Command::new("kill")
        .args(["-KILL", &victim.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let ended = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = launcher.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > ended {
            launcher.kill().unwrap();
            panic!("rank 0 still runs 60 s after rank 1 was killed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = launcher.wait_with_output().unwrap();
    let told =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        !status.success(),
        "the job succeeded after a rank was killed"
    );
    assert!(
        told.contains("rank 1") && told.contains("signal 9"),
        "the launcher names the killed rank:\n{told}"
    );
}
