//! Attacks on any per-sample differentiable objective (SPEC §4): a classifier's loss, or a
//! critic's mutual-information estimate. An objective is a closure mapping a batch `[N, …]` to
//! per-sample values `[N]` that the attack *increases*; callers put their networks in
//! evaluation mode inside it. Every attack keeps, per sample, the iterate with the highest value.
pub mod apgd;
pub mod classifier;
pub mod losses;
pub mod pgd;
pub mod square;

pub use apgd::apgd;
pub use pgd::{fgsm, pgd};
pub use square::square;

use crate::error::{ensure_positive, ensure_positive_number, Error, Result};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// Per-sample objective to increase.
pub type Objective<'a> = dyn Fn(&Tensor) -> Tensor + 'a;

/// A per-sample objective on some rows of the attacked batch: `(x_rows, rows)` → values, where
/// `rows` (Int64) are the positions of `x_rows` in the batch. It lets an attack drop the
/// samples it is done with ([`pgd::pgd_until`]) while the objective still knows, say, their
/// labels.
pub type RowObjective<'a> = dyn Fn(&Tensor, &Tensor) -> Tensor + 'a;

/// The threat: a per-sample ℓ∞ or ℓ2 ball of radius ε, intersected with the input box.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Norm {
    Linf,
    L2,
}

/// Settings of PGD-style attacks.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttackConfig {
    pub norm: Norm,
    /// Radius ε of the ball (0 leaves inputs unchanged).
    pub eps: f64,
    pub steps: usize,
    /// Step size α: the ℓ∞ step is α·sign(∇), the ℓ2 step α·∇/‖∇‖₂.
    pub step_size: f64,
    /// Start from a uniform random point of the ball instead of the input.
    pub random_start: bool,
    /// Independent runs; each sample keeps its best over all of them (≥ 1).
    pub restarts: usize,
    /// The input box, `[0, 1]` for images; `None` for unbounded inputs (synthetic data).
    pub bounds: Option<(f64, f64)>,
}

impl AttackConfig {
    /// The paper's evaluation PGD: ℓ∞, no random start, one run, pixels in [0, 1].
    pub fn linf(eps: f64, steps: usize, step_size: f64) -> Self {
        Self {
            norm: Norm::Linf,
            eps,
            steps,
            step_size,
            random_start: false,
            restarts: 1,
            bounds: Some((0.0, 1.0)),
        }
    }

    /// Rejects settings under which an attack is meaningless.
    pub fn validate(&self) -> Result<()> {
        if !(self.eps >= 0.0 && self.eps.is_finite()) {
            return Err(Error::invalid(
                "eps",
                format!("must be a finite number ≥ 0, got {}", self.eps),
            ));
        }
        ensure_positive("steps", self.steps as i64)?;
        ensure_positive_number("step_size", self.step_size)?;
        ensure_positive("restarts", self.restarts as i64)
    }
}

/// Views per-sample values `[N]` as `[N, 1, 1, …]` to broadcast against a batch like `like`.
fn per_sample(values: &Tensor, like: &Tensor) -> Tensor {
    let mut shape = vec![like.size()[0]];
    shape.extend(std::iter::repeat_n(1, like.dim() - 1));
    values.view(shape.as_slice())
}

/// Per-sample ℓ2 norms of a batch, shaped to broadcast against it.
fn l2_norms(t: &Tensor) -> Tensor {
    let flat = t.reshape([t.size()[0], -1]);
    per_sample(&flat.norm_scalaropt_dim(2.0, [1], false), t)
}

/// Projects `x_adv` onto the ε-ball around `x`, then into the input box.
pub fn project(x_adv: &Tensor, x: &Tensor, config: &AttackConfig) -> Tensor {
    let delta = x_adv - x;
    let delta = match config.norm {
        Norm::Linf => delta.clamp(-config.eps, config.eps),
        Norm::L2 => {
            let scale = ((l2_norms(&delta) + 1e-12).reciprocal() * config.eps).clamp_max(1.0);
            delta * scale
        }
    };
    clip(&(x + delta), config)
}

fn clip(x: &Tensor, config: &AttackConfig) -> Tensor {
    match config.bounds {
        Some((lo, hi)) => x.clamp(lo, hi),
        None => x.shallow_clone(),
    }
}

/// The ascent direction: sign(g) for ℓ∞, g/‖g‖₂ per sample for ℓ2.
fn ascent_direction(grad: &Tensor, norm: Norm) -> Tensor {
    match norm {
        Norm::Linf => grad.sign(),
        Norm::L2 => grad / (l2_norms(grad) + 1e-12),
    }
}

/// A uniformly random point of the ε-ball around `x` (inside the box).
fn random_start(x: &Tensor, config: &AttackConfig) -> Tensor {
    let delta = match config.norm {
        Norm::Linf => x.rand_like() * (2.0 * config.eps) - config.eps,
        Norm::L2 => {
            // A uniform direction, and a radius ε·U^(1/d) so the point is uniform in the ball.
            let direction = x.randn_like();
            let direction = &direction / (l2_norms(&direction) + 1e-12);
            let n = x.size()[0];
            let d = x.numel() as f64 / n as f64;
            let u = Tensor::rand([n], (x.kind(), x.device()));
            direction * per_sample(&(u.pow_tensor_scalar(1.0 / d) * config.eps), x)
        }
    };
    clip(&(x + delta), config)
}

/// The objective and its gradient with respect to the input. Only the input's gradient is
/// computed: the networks' parameters accumulate nothing.
fn value_and_grad(objective: &Objective, x: &Tensor) -> (Tensor, Tensor) {
    let x = x.detach().set_requires_grad(true);
    let value = objective(&x);
    let grad = Tensor::run_backward(&[value.sum(Kind::Float)], &[&x], false, false)
        .pop()
        .expect("one gradient per input");
    (value.detach(), grad)
}

/// Runs an attack `run` (`(x_rows, rows, start)` → its best iterate and value for those rows)
/// from the input, or a random start with `random_start`, and from a random start for every
/// further restart; each sample keeps its best over every run. With `stop_above`, a restart
/// runs only on the samples whose best value no earlier run took above it; without, on all.
/// ε = 0 returns the input.
fn best_over_restarts(
    x: &Tensor,
    config: &AttackConfig,
    stop_above: Option<f64>,
    mut run: impl FnMut(&Tensor, &Tensor, Tensor) -> (Tensor, Tensor),
) -> Result<Tensor> {
    config.validate()?;
    let x = x.detach();
    if config.eps == 0.0 {
        return Ok(x);
    }
    let mut best_x = x.shallow_clone();
    let mut best_value = unbeaten(&x);
    for restart in 0..config.restarts {
        let (rows, x_rows) = match stop_above {
            Some(threshold) => {
                let rows = not_above(&best_value, threshold);
                let x_rows = x.index_select(0, &rows);
                (rows, x_rows)
            }
            None => (
                Tensor::arange(x.size()[0], (Kind::Int64, x.device())),
                x.shallow_clone(),
            ),
        };
        if rows.size()[0] == 0 {
            break;
        }
        let start = if config.random_start || restart > 0 {
            random_start(&x_rows, config)
        } else {
            x_rows.shallow_clone()
        };
        let (run_x, run_value) = run(&x_rows, &rows, start);
        keep_best_rows(&mut best_x, &mut best_value, &rows, &run_x, &run_value);
    }
    Ok(best_x)
}

/// Per-sample values that any candidate beats.
fn unbeaten(x: &Tensor) -> Tensor {
    Tensor::full([x.size()[0]], f64::NEG_INFINITY, (Kind::Float, x.device()))
}

/// Keeps, per sample, the candidate whose value beats the best so far.
fn keep_best(best_x: &mut Tensor, best_value: &mut Tensor, x: &Tensor, value: &Tensor) {
    let improved = value.gt_tensor(best_value);
    *best_x = x.where_self(&per_sample(&improved, x), best_x);
    *best_value = value.maximum(best_value);
}

/// Positions of the values not above `threshold` (a NaN is not above it).
fn not_above(values: &Tensor, threshold: f64) -> Tensor {
    values.gt(threshold).logical_not().nonzero().squeeze_dim(1)
}

/// [`keep_best`] for the candidates of the samples at positions `rows` of the best batch.
/// Rows are ascending positions, so as many rows as the batch has are all of it, in order.
fn keep_best_rows(
    best_x: &mut Tensor,
    best_value: &mut Tensor,
    rows: &Tensor,
    x: &Tensor,
    value: &Tensor,
) {
    if rows.size()[0] == best_x.size()[0] {
        return keep_best(best_x, best_value, x, value);
    }
    let mut row_x = best_x.index_select(0, rows);
    let mut row_value = best_value.index_select(0, rows);
    keep_best(&mut row_x, &mut row_value, x, value);
    *best_x = best_x.index_copy(0, rows, &row_x);
    *best_value = best_value.index_copy(0, rows, &row_value);
}

/// Test support shared by the attacks' tests.
#[cfg(test)]
pub(crate) mod test_support {
    use super::Norm;
    use tch::Tensor;

    /// Asserts that every row of `x_adv` lies in the `norm` ball of radius `eps` around `x`
    /// and in the box [0, 1].
    pub fn assert_in_threat(x_adv: &Tensor, x: &Tensor, norm: Norm, eps: f64) {
        let delta = (x_adv - x).reshape([x.size()[0], -1]);
        let size = match norm {
            Norm::Linf => delta.abs().amax([1], false),
            Norm::L2 => delta.norm_scalaropt_dim(2.0, [1], false),
        };
        assert!(
            size.max().double_value(&[]) <= eps + 1e-5,
            "{norm:?} left the ball"
        );
        assert!(x_adv.min().double_value(&[]) >= 0.0 && x_adv.max().double_value(&[]) <= 1.0);
    }
}
