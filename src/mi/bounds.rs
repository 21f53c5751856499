//! The three MI lower bounds of SPEC §2, on the critic's scores `u[i, j, p]` (`[N, N, P]`,
//! positives on the diagonal i = j, P local positions). Each returns the estimate Î as a
//! scalar tensor (higher = more information); training losses are −Î.
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Bound {
    /// Donsker–Varadhan (MINE), in nats; the paper's default.
    Dv,
    /// Jensen–Shannon (f-GAN / Deep InfoMax): a JS-divergence bound, not in nats.
    Jsd,
    /// InfoNCE, in nats, at most ln N.
    Infonce,
}

impl Bound {
    /// How reports name an estimate from this bound, with its unit (for axis labels).
    pub fn estimate_label(self) -> &'static str {
        match self {
            Bound::Dv => "DV estimate of MI (nats)",
            Bound::Jsd => "Jensen–Shannon MI estimate (not in nats)",
            Bound::Infonce => "InfoNCE estimate of MI (nats)",
        }
    }
}

/// MI bounds contrast each positive pair with the batch's other pairs: a batch needs two.
pub fn ensure_negatives(batch_size: i64) -> crate::error::Result<()> {
    if batch_size >= 2 {
        Ok(())
    } else {
        Err(crate::error::Error::invalid(
            "batch_size",
            format!("MI bounds need negatives: at least 2 pairs per batch, got {batch_size}"),
        ))
    }
}

/// The positive scores `u[i, i, p]`, `[N, P]`.
fn positives(u: &Tensor) -> Tensor {
    u.diagonal(0, 0, 1).transpose(0, 1)
}

/// A `[N, N, 1]` mask that is true off the diagonal.
fn off_diagonal(u: &Tensor) -> Tensor {
    let n = u.size()[0];
    Tensor::eye(n, (Kind::Bool, u.device()))
        .logical_not()
        .unsqueeze(-1)
}

/// log Σ_k exp x[k, …] with the maximum taken out as a constant (the value and gradient are
/// the same); measured about twice as fast as libtorch's `logsumexp` on the DV's `[N², P]`
/// negatives, whose forward and backward were a fifth of a worst-case PGD step.
fn logsumexp_dim0(x: &Tensor) -> Tensor {
    let max = x.amax([0i64].as_slice(), true).detach();
    (x - &max)
        .exp()
        .sum_dim_intlist([0i64].as_slice(), false, x.kind())
        .log()
        + max.squeeze_dim(0)
}

/// Î for `bound` from scores `[N, N, P]` (N ≥ 2).
pub fn estimate(bound: Bound, u: &Tensor) -> Tensor {
    let n = u.size()[0];
    assert!(
        n >= 2,
        "MI bounds need at least two samples per batch (negatives)"
    );
    let pairs = (n * (n - 1)) as f64;
    let mask = off_diagonal(u);
    let kind = u.kind();
    match bound {
        Bound::Dv => {
            // mean_p [ mean_i u_iip − log mean_{i≠j} exp u_ijp ], the diagonal excluded.
            let negatives = u.masked_fill(&mask.logical_not(), f64::NEG_INFINITY);
            let log_mean_exp = logsumexp_dim0(&negatives.flatten(0, 1)) - pairs.ln();
            (positives(u).mean_dim([0i64].as_slice(), false, kind) - log_mean_exp).mean(kind)
        }
        Bound::Jsd => {
            let positive = (-(-positives(u)).softplus()).mean(kind);
            let negative =
                (u.softplus() * mask.to_kind(u.kind())).sum(kind) / (pairs * u.size()[2] as f64);
            positive - negative
        }
        Bound::Infonce => {
            let log_softmax = u.log_softmax(1, kind);
            positives(&log_softmax).mean(kind) + (n as f64).ln()
        }
    }
}

/// Each sample's own term, `[N]`: mean_p [u_iip − log mean_j exp u_ijp], how well the critic
/// tells sample i's representation from the batch's others. Their mean is the InfoNCE bound
/// less ln N; a search that lowers one sample's term lowers the batch's MI estimate.
pub fn pointwise(u: &Tensor) -> Tensor {
    let n = u.size()[0];
    let log_softmax = u.log_softmax(1, u.kind());
    positives(&log_softmax).mean_dim([1i64].as_slice(), false, u.kind()) + (n as f64).ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn scores(n: i64, p: i64) -> Tensor {
        tch::manual_seed(1);
        Tensor::randn([n, n, p], (Kind::Double, Device::Cpu))
    }

    /// Each bound computed by explicit loops over (i, j, p).
    fn by_hand(bound: Bound, u: &Tensor) -> f64 {
        let s = u.size();
        let (n, p) = (s[0], s[2]);
        let at = |i: i64, j: i64, k: i64| u.double_value(&[i, j, k]);
        let softplus = |x: f64| (1.0 + x.exp()).ln();
        let mut total = 0.0;
        for k in 0..p {
            let (mut pos, mut neg) = (0.0, 0.0);
            for i in 0..n {
                match bound {
                    Bound::Dv => pos += at(i, i, k),
                    Bound::Jsd => pos -= softplus(-at(i, i, k)),
                    Bound::Infonce => {
                        let lse = (0..n).map(|j| at(i, j, k).exp()).sum::<f64>().ln();
                        pos += at(i, i, k) - lse;
                    }
                }
                for j in (0..n).filter(|&j| j != i) {
                    match bound {
                        Bound::Dv => neg += at(i, j, k).exp(),
                        Bound::Jsd => neg += softplus(at(i, j, k)),
                        Bound::Infonce => {}
                    }
                }
            }
            let pairs = (n * (n - 1)) as f64;
            total += match bound {
                Bound::Dv => pos / n as f64 - (neg / pairs).ln(),
                Bound::Jsd => pos / n as f64 - neg / pairs,
                Bound::Infonce => pos / n as f64 + (n as f64).ln(),
            };
        }
        total / p as f64
    }

    #[test]
    fn bounds_match_their_definitions() {
        let u = scores(5, 3);
        for bound in [Bound::Dv, Bound::Jsd, Bound::Infonce] {
            let got = estimate(bound, &u).double_value(&[]);
            let want = by_hand(bound, &u);
            assert!((got - want).abs() < 1e-9, "{bound:?}: {got} vs {want}");
        }
    }

    #[test]
    fn pointwise_terms_average_to_infonce() {
        let u = scores(6, 2);
        let mean = pointwise(&u).mean(Kind::Double).double_value(&[]);
        let infonce = estimate(Bound::Infonce, &u).double_value(&[]);
        assert!((mean - infonce).abs() < 1e-9, "{mean} vs {infonce}");
        assert_eq!(pointwise(&u).size(), [6]);
    }

    #[test]
    fn infonce_is_capped_by_log_n_and_dv_ignores_the_diagonal_in_negatives() {
        // Perfectly separated scores: InfoNCE → ln N.
        let n = 8;
        let u = (Tensor::eye(n, (Kind::Double, Device::Cpu)) * 50.0).unsqueeze(-1);
        let infonce = estimate(Bound::Infonce, &u).double_value(&[]);
        assert!((infonce - (n as f64).ln()).abs() < 1e-9);
        // Negatives all 0 → DV = positive mean exactly (no spurious exp(u_ii) terms).
        assert!((estimate(Bound::Dv, &u).double_value(&[]) - 50.0).abs() < 1e-9);
    }
}
