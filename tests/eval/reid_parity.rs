//! Evaluation parity with torchreid 0.2.5: distance matrices, `evaluate_rank` (CMC, mAP),
//! mINP (NumPy reference) and `re_ranking`, on the fixture written by
//! `tests/fixtures/make_eval_fixtures.py`.

use std::collections::BTreeMap;
use std::path::Path;

use reid::eval::{
    EvalOptions, Labels, Matrix, Metric, RankMetrics, RerankParams, distance_matrix, evaluate,
    evaluate_market1501, rerank,
};
use reid::formats::npy::{NpyArray, read_npz};

struct Fixture(BTreeMap<String, NpyArray>);

impl Fixture {
    fn load() -> Self {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eval/market_small.npz");
        Fixture(read_npz(path).unwrap())
    }

    fn matrix(&self, name: &str) -> Matrix {
        let a = &self.0[name];
        Matrix::new(a.shape[0], a.shape[1], a.to_f32()).unwrap()
    }

    fn ints(&self, name: &str) -> Vec<i64> {
        self.0[name].to_i64().unwrap()
    }

    fn floats(&self, name: &str) -> Vec<f64> {
        self.0[name].to_f64()
    }
}

fn assert_metrics(what: &str, got: &RankMetrics, fx: &Fixture, prefix: &str, metric: &str) {
    let cmc = fx.floats(&format!("{prefix}cmc_{metric}"));
    assert_eq!(got.cmc.len(), cmc.len(), "{what}: cmc length");
    for (k, (a, b)) in got.cmc.iter().zip(&cmc).enumerate() {
        assert!((a - b).abs() <= 1e-6, "{what}: rank-{} {a} vs {b}", k + 1);
    }
    let map = fx.floats(&format!("{prefix}map_{metric}"))[0];
    assert!(
        (got.map - map).abs() <= 1e-6,
        "{what}: mAP {} vs {map}",
        got.map
    );
}

fn with_labels<T>(fx: &Fixture, f: impl FnOnce(Labels) -> T) -> T {
    let (qp, gp, qc, gc) = (
        fx.ints("q_pids"),
        fx.ints("g_pids"),
        fx.ints("q_camids"),
        fx.ints("g_camids"),
    );
    f(Labels {
        query_ids: &qp,
        gallery_ids: &gp,
        query_cams: &qc,
        gallery_cams: &gc,
    })
}

fn max_abs_diff(a: &Matrix, b: &Matrix) -> f32 {
    a.data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn distance_matrices_match_torchreid() {
    let fx = Fixture::load();
    let (qf, gf) = (fx.matrix("qf"), fx.matrix("gf"));
    for (metric, name) in [(Metric::Cosine, "cosine"), (Metric::Euclidean, "euclidean")] {
        let ours = distance_matrix(&qf, &gf, metric).unwrap();
        let theirs = fx.matrix(&format!("dist_{name}"));
        let scale = theirs.data.iter().fold(1f32, |m, v| m.max(v.abs()));
        let worst = max_abs_diff(&ours, &theirs);
        assert!(
            worst <= 1e-6 * scale * 4.0,
            "{name}: max |Δ| {worst} (scale {scale})"
        );
    }
}

#[test]
fn rank_metrics_on_torchreid_distances_match_evaluate_rank() {
    let fx = Fixture::load();
    for metric in ["cosine", "euclidean"] {
        let dist = fx.matrix(&format!("dist_{metric}"));
        let got = with_labels(&fx, |l| evaluate_market1501(&dist, l, 50)).unwrap();
        assert_metrics(metric, &got, &fx, "", metric);
        let minp = fx.floats(&format!("minp_{metric}"))[0];
        assert!(
            (got.minp - minp).abs() <= 1e-6,
            "{metric}: mINP {} vs {minp}",
            got.minp
        );
        // The query whose identity is only in its own camera is skipped.
        assert_eq!(got.num_valid_queries, 49);
    }
}

#[test]
fn end_to_end_evaluation_from_features_matches() {
    let fx = Fixture::load();
    let (qf, gf) = (fx.matrix("qf"), fx.matrix("gf"));
    for (metric, name) in [(Metric::Cosine, "cosine"), (Metric::Euclidean, "euclidean")] {
        let options = EvalOptions {
            metric,
            rerank: None,
            cuhk03: false,
        };
        let got = with_labels(&fx, |l| evaluate(&qf, &gf, l, options)).unwrap();
        assert_metrics(name, &got, &fx, "", name);
    }
}

#[test]
fn reranking_matches_torchreid() {
    let fx = Fixture::load();
    let (qf, gf) = (fx.matrix("qf"), fx.matrix("gf"));
    for (metric, name) in [(Metric::Cosine, "cosine"), (Metric::Euclidean, "euclidean")] {
        let q_g = fx.matrix(&format!("dist_{name}"));
        let q_q = distance_matrix(&qf, &qf, metric).unwrap();
        let g_g = distance_matrix(&gf, &gf, metric).unwrap();
        let ours = rerank(&q_g, &q_q, &g_g, RerankParams::default()).unwrap();
        let theirs = fx.matrix(&format!("rerank_dist_{name}"));
        let worst = max_abs_diff(&ours, &theirs);
        assert!(worst <= 1e-5, "{name}: re-ranked max |Δ| {worst}");
        let got = with_labels(&fx, |l| evaluate_market1501(&ours, l, 50)).unwrap();
        assert_metrics(name, &got, &fx, "rerank_", name);
    }
}

#[test]
fn inconsistent_inputs_are_errors() {
    let fx = Fixture::load();
    let dist = fx.matrix("dist_cosine");
    let short = vec![1i64; 3];
    let g = fx.ints("g_pids");
    let labels = Labels {
        query_ids: &short,
        gallery_ids: &g,
        query_cams: &short,
        gallery_cams: &g,
    };
    assert!(evaluate_market1501(&dist, labels, 50).is_err());
    let mut nan = dist.clone();
    nan.data[7] = f32::NAN;
    assert!(with_labels(&fx, |l| evaluate_market1501(&nan, l, 50)).is_err());
    // Nobody in the gallery: every query is skipped, which is an error, not a division by zero.
    let q = fx.ints("q_pids");
    let other = vec![-5i64; g.len()];
    let cams = fx.ints("g_camids");
    let qc = fx.ints("q_camids");
    let labels = Labels {
        query_ids: &q,
        gallery_ids: &other,
        query_cams: &qc,
        gallery_cams: &cams,
    };
    assert!(evaluate_market1501(&dist, labels, 50).is_err());
    assert!(Matrix::new(2, 3, vec![0.0; 5]).is_err());
}

#[test]
fn cuhk03_protocol_matches_torchreid() {
    let fx = Fixture::load();
    // Every identity keeps one gallery image: torchreid's random draw is fixed, so exact.
    let dist = fx.matrix("single_dist");
    let (qp, gp) = (fx.ints("q_pids"), fx.ints("single_g_pids"));
    let (qc, gc) = (fx.ints("single_q_camids"), fx.ints("single_g_camids"));
    let labels = Labels {
        query_ids: &qp,
        gallery_ids: &gp,
        query_cams: &qc,
        gallery_cams: &gc,
    };
    let got = reid::eval::evaluate_cuhk03(&dist, labels, 50).unwrap();
    let want = fx.floats("single_cmc");
    for (k, w) in want.iter().enumerate() {
        assert!(
            (got.cmc[k] - w).abs() <= 1e-6,
            "rank-{}: {} vs {w}",
            k + 1,
            got.cmc[k]
        );
    }
    assert!((got.map - fx.floats("single_map")[0]).abs() <= 1e-6);

    // Several images per identity: the expectation against 1,000 draws of torchreid's loop.
    let dist = fx.matrix("dist_cosine");
    let got = with_labels(&fx, |l| reid::eval::evaluate_cuhk03(&dist, l, 50)).unwrap();
    let estimate = fx.floats("cuhk03_cmc_mc_cosine");
    for (k, e) in estimate.iter().enumerate() {
        assert!(
            (got.cmc[k] - e).abs() <= 0.01,
            "rank-{}: {} vs ~{e}",
            k + 1,
            got.cmc[k]
        );
    }
    assert!((got.map - fx.floats("cuhk03_map_cosine")[0]).abs() <= 1e-6);
}

#[test]
fn classification_metrics_match_torch_and_sklearn() {
    let fx = Fixture::load();
    let logits = fx.0["cls_logits"].to_f32();
    let labels: Vec<usize> = fx.ints("cls_labels").iter().map(|&l| l as usize).collect();
    for (k, name) in [(1, "cls_top1"), (5, "cls_top5")] {
        let got = reid::eval::top_k_accuracy(&logits, 15, &labels, k).unwrap();
        let want = fx.floats(name)[0];
        assert!((got - want).abs() <= 1e-6, "top-{k}: {got} vs {want}");
    }
    let scores = fx.0["ml_scores"].to_f32();
    let targets: Vec<u8> = fx.ints("ml_targets").iter().map(|&t| t as u8).collect();
    let got = reid::eval::multilabel_map(&scores, &targets, 12).unwrap();
    let want = fx.floats("ml_map")[0];
    assert!((got - want).abs() <= 1e-6, "multilabel mAP {got} vs {want}");
    assert!(reid::eval::top_k_accuracy(&logits, 14, &labels, 1).is_err());
    assert!(reid::eval::multilabel_map(&scores, &vec![0; targets.len()], 12).is_err());
}
