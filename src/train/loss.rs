//! Training losses, as torchreid and deep-object-reid define them: cross-entropy with label
//! smoothing, AM-softmax, the batch-hard triplet loss, deep mutual learning's KL term,
//! fast-reid's distillation losses (softened logits and embedding similarities) and
//! deep-object-reid's consistency of augmented copies.

use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Int, Tensor};

/// torchreid's `CrossEntropyLoss(label_smooth=True)`: targets `(1 − ε)·onehot + ε / C`, loss
/// `Σ_c mean_i(−target_ic · log softmax(logits)_ic)`. `epsilon` 0 is plain cross-entropy.
pub fn cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>, epsilon: f32) -> Tensor<1> {
    let [n, classes] = logits.dims();
    let log_probs = log_softmax(logits, 1);
    let onehot: Tensor<2> = targets.one_hot::<2>(classes).float();
    let smooth = onehot * (1.0 - epsilon) + epsilon / classes as f32;
    (smooth * log_probs).sum().neg() / n as f32
}

/// deep-object-reid's `mixing_loss`: the consistency of `packages` augmented copies of each
/// image. `logits` holds the copies of an image in consecutive rows (`[B · P, K]`; for
/// AM-softmax the scaled cosines, without margin); the target of every copy is the mean of the
/// copies' class distributions (a constant of the step), and the loss is the mean over copies of
/// the cross-entropy to it.
pub fn package_consistency(logits: Tensor<2>, packages: usize) -> Tensor<1> {
    let [n, classes] = logits.dims();
    let images = n / packages;
    let z = logits.reshape([images, packages, classes]);
    let target = softmax(z.clone(), 2).mean_dim(1).detach();
    let cross = target.expand([images, packages, classes]) * log_softmax(z, 2);
    cross.sum().neg() / n as f32
}

/// Pairwise euclidean distances `[n, n]` between rows (clamped before the root, as torchreid).
fn pairwise_distances(features: Tensor<2>) -> Tensor<2> {
    let squares = features.clone().powf_scalar(2.0).sum_dim(1);
    let gram = features.clone().matmul(features.transpose());
    (squares.clone() + squares.transpose() - gram * 2.0)
        .clamp_min(1e-12)
        .sqrt()
}

/// torchreid's `TripletLoss`: for each anchor the hardest positive (farthest, same identity)
/// and hardest negative (closest, other identity), `mean(max(0, d_ap − d_an + margin))`.
/// Each identity needs another image in the batch (P × K sampling).
pub fn triplet_hard(features: Tensor<2>, targets: Tensor<1, Int>, margin: f32) -> Tensor<1> {
    let n = targets.dims()[0];
    let distances = pairwise_distances(features);
    let rows = targets.clone().reshape([n, 1]).expand([n, n]);
    let cols = targets.reshape([1, n]).expand([n, n]);
    let same = rows.equal(cols);
    let hardest_positive = distances
        .clone()
        .mask_fill(same.clone().bool_not(), 0.0)
        .max_dim(1);
    let hardest_negative = distances.mask_fill(same, f32::MAX).min_dim(1);
    (hardest_positive - hardest_negative + margin)
        .clamp_min(0.0)
        .mean()
}

/// AM-softmax (additive margin; deep-object-reid's `AMSoftmaxLoss`): cross-entropy of
/// `scale · (cos θ − margin · onehot)` over cosine logits, with optional label smoothing.
pub fn am_softmax(
    cosine: Tensor<2>,
    targets: Tensor<1, Int>,
    margin: f32,
    scale: f32,
    epsilon: f32,
) -> Tensor<1> {
    let classes = cosine.dims()[1];
    let onehot: Tensor<2> = targets.clone().one_hot::<2>(classes).float();
    cross_entropy((cosine - onehot * margin) * scale, targets, epsilon)
}

/// The identity loss of a mixed batch (deep-object-reid's `CrossEntropyLoss` with mixed
/// targets): the cross-entropy against `lam · t_own + (1 − lam) · t_partner` of the smoothed
/// targets, which is `lam · CE(own) + (1 − lam) · CE(partner)`.
pub fn mixed_cross_entropy(
    logits: Tensor<2>,
    own: Tensor<1, Int>,
    partner: Tensor<1, Int>,
    lam: f32,
    epsilon: f32,
) -> Tensor<1> {
    cross_entropy(logits.clone(), own, epsilon) * lam
        + cross_entropy(logits, partner, epsilon) * (1.0 - lam)
}

/// AM-softmax on a mixed batch (deep-object-reid's `AMSoftmaxLoss` with mixed targets): the
/// margin goes to each image's dominant identity — its own above `lam` ½, its partner's below,
/// the smaller id at ½ (the arg-max of the mixed targets) — and the scaled logits are scored
/// against both identities as in [`mixed_cross_entropy`].
pub fn mixed_am_softmax(
    cosine: Tensor<2>,
    own: Tensor<1, Int>,
    partner: Tensor<1, Int>,
    lam: f32,
    margins: (f32, f32),
    epsilon: f32,
) -> Tensor<1> {
    let (margin, scale) = margins;
    let classes = cosine.dims()[1];
    let dominant = match lam.partial_cmp(&0.5) {
        Some(std::cmp::Ordering::Greater) => own.clone(),
        Some(std::cmp::Ordering::Less) => partner.clone(),
        _ => own.clone().min_pair(partner.clone()),
    };
    let onehot: Tensor<2> = dominant.one_hot::<2>(classes).float();
    mixed_cross_entropy(
        (cosine - onehot * margin) * scale,
        own,
        partner,
        lam,
        epsilon,
    )
}

/// Deep mutual learning's mimicry term: KL(softmax(`peer`) ‖ softmax(`logits`)), batch mean,
/// with the peer's distribution held constant.
pub fn mutual_kl(peer: Tensor<2>, logits: Tensor<2>) -> Tensor<1> {
    let n = logits.dims()[0];
    let target = log_softmax(peer.detach(), 1);
    let log_probs = log_softmax(logits, 1);
    (target.clone().exp() * (target - log_probs)).sum() / n as f32
}

/// fast-reid's probabilistic knowledge transfer (`KDTrainer.pkt_loss`, Passalis & Tefas): the
/// embeddings of the batch, each scaled to unit length, give cosine similarities mapped to
/// [0, 1] and normalized per row into a distribution over the batch; the loss is the mean over
/// all pairs of `p_t · log((p_t + ε) / (p_s + ε))`. Student and teacher embeddings may differ
/// in size; the teacher's are constants. An all-zero embedding (OSNet's embedding ends in a
/// ReLU) counts as fast-reid counts it, as the zero vector, but passes no gradient: fast-reid's
/// gradient there is NaN (the square root's at 0), which would make every weight NaN.
pub fn probabilistic_transfer(student: Tensor<2>, teacher: Tensor<2>) -> Tensor<1> {
    const EPS: f32 = 1e-7;
    // Below this squared norm an embedding is treated as zero.
    const TINY: f32 = 1e-24;
    let distribution = |x: Tensor<2>| {
        let squares = x.clone().powf_scalar(2.0).sum_dim(1);
        let live = squares.clone().greater_elem(TINY).float();
        let unit = x * live / (squares.clamp_min(TINY).sqrt() + EPS);
        let similarity = (unit.clone().matmul(unit.transpose()) + 1.0) / 2.0;
        similarity.clone() / similarity.sum_dim(1)
    };
    let (p_s, p_t) = (distribution(student), distribution(teacher.detach()));
    (p_t.clone() * ((p_t + EPS) / (p_s + EPS)).log()).mean()
}

/// fast-reid's distillation loss (`Distiller.jsdiv_loss`): the mean of KL(teacher ‖ student)
/// and KL(student ‖ teacher) between the distributions softened by `temperature`, times its
/// square, batch mean. The teacher's logits are constants; the student's gradient flows through
/// both terms, as in fast-reid.
pub fn distillation_js(student: Tensor<2>, teacher: Tensor<2>, temperature: f32) -> Tensor<1> {
    let n = student.dims()[0];
    let log_student = log_softmax(student / temperature, 1);
    let log_teacher = log_softmax(teacher.detach() / temperature, 1);
    // KL(P ‖ Q) summed over the batch, from log P and log Q.
    let kl = |log_p: Tensor<2>, log_q: Tensor<2>| (log_p.clone().exp() * (log_p - log_q)).sum();
    let both = kl(log_teacher.clone(), log_student.clone()) + kl(log_student, log_teacher);
    both * (temperature * temperature / (2.0 * n as f32))
}
