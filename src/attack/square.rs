//! Square (Andriushchenko et al., ECCV 2020, "Square Attack: a query-efficient black-box
//! adversarial attack via random search"), AutoAttack's black-box member: random search that
//! changes one square window of the perturbation per query and keeps the change when the
//! objective rises. It reads forward values only, so masked or obfuscated gradients do not
//! stop it: when it beats the gradient attacks, the gradients were misleading them.
//!
//! Settings as in AutoAttack's standard version: `config.steps` queries (5,000), `p_init` 0.8
//! with the schedule rescaled to the query budget, margin loss for classifiers (the caller's
//! objective). The window's place is shared by a batch, its signs are drawn per sample; so a
//! network that can propagate a window's change (a folded classifier) computes only what each
//! query changes ([`crate::nn::WindowSearch`]).
use super::{clip, keep_best, l2_norms, per_sample, AttackConfig, Norm, Objective};
use crate::error::Result;
use crate::nn::{Whole, Window, WindowSearch};
use tch::{IndexOp, Kind, Tensor};

/// The fraction of pixels the first windows cover (AutoAttack's default).
pub const P_INIT: f64 = 0.8;

/// Runs Square on `objective` (values to increase) from its own random start, `config.restarts`
/// times. A sample whose best value exceeds `stop_above` (e.g. 0 for a classifier's negative
/// margin: misclassified) keeps its point; the run ends when all have. Returns the best point
/// per sample. Inputs other than `[N, C, H, W]` images are searched as images of one row.
pub fn square(
    objective: &Objective,
    x: &Tensor,
    config: &AttackConfig,
    stop_above: Option<f64>,
) -> Result<Tensor> {
    let size = x.size();
    if size.len() == 4 {
        return search(&mut Whole(objective), x, config, stop_above);
    }
    let flat = x.reshape([size[0], 1, 1, -1]);
    let objective = |z: &Tensor| objective(&z.reshape(size.as_slice()));
    Ok(search(&mut Whole(objective), &flat, config, stop_above)?.reshape(size.as_slice()))
}

/// [`square`] on the values of a window search of `[N, C, H, W]` images, which may compute a
/// candidate from the best point's values outside its window (issue 16).
pub(super) fn search(
    values: &mut dyn WindowSearch,
    x: &Tensor,
    config: &AttackConfig,
    stop_above: Option<f64>,
) -> Result<Tensor> {
    config.validate()?;
    let x = x.detach();
    if config.eps == 0.0 {
        return Ok(x);
    }
    tch::no_grad(|| {
        let mut best_x = x.shallow_clone();
        let mut best_value = values.reset(&x);
        for _ in 0..config.restarts {
            let (run_x, run_value) = run(values, &x, config, stop_above);
            keep_best(&mut best_x, &mut best_value, &run_x, &run_value);
        }
        Ok(best_x)
    })
}

/// The window fraction after `query` of `queries`: AutoAttack's schedule for 10,000 queries,
/// rescaled to the budget, halving p at 10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000.
pub fn p_schedule(query: usize, queries: usize) -> f64 {
    let at = (query as f64 / queries as f64 * 10_000.0) as usize;
    let halvings = [10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000]
        .iter()
        .filter(|&&mark| at > mark)
        .count();
    P_INIT / f64::powi(2.0, halvings as i32)
}

fn signs(shape: &[i64], like: &Tensor) -> Tensor {
    Tensor::rand(shape, (Kind::Float, like.device()))
        .ge(0.5)
        .to_kind(Kind::Float)
        * 2.0
        - 1.0
}

fn random_offset(range: i64) -> i64 {
    if range <= 0 {
        0
    } else {
        Tensor::randint(range + 1, [1], (Kind::Int64, tch::Device::Cpu)).int64_value(&[0])
    }
}

/// One run: returns its best point and value per sample.
fn run(
    values: &mut dyn WindowSearch,
    x: &Tensor,
    config: &AttackConfig,
    stop_above: Option<f64>,
) -> (Tensor, Tensor) {
    let size = x.size();
    let (n, c, h, w) = (size[0], size[1], size[2], size[3]);
    let mut best_x = match config.norm {
        // Vertical stripes of ±ε.
        Norm::Linf => clip(&(x + signs(&[n, c, 1, w], x) * config.eps), config),
        Norm::L2 => clip(&(x + unit_l2(&l2_start(x)) * config.eps), config),
    };
    let mut best_value = values.reset(&best_x);
    for query in 0..config.steps {
        // The objective sees whole batches (it may pair rows with labels); samples past the
        // threshold are proposed their current point and cannot change.
        let active = match stop_above {
            Some(threshold) => best_value.le(threshold),
            None => best_value.ones_like().to_kind(Kind::Bool),
        };
        if !bool::try_from(active.any()).unwrap_or(false) {
            break;
        }
        let p = p_schedule(query, config.steps);
        let (candidate, window) = match config.norm {
            Norm::Linf => {
                let s = ((p * (h * w) as f64).sqrt().round() as i64).clamp(1, h.min(w));
                let (vh, vw) = (random_offset(h - s), random_offset(w - s));
                let window = Window {
                    rows: vh..vh + s,
                    cols: vw..vw + s,
                };
                let proposal = clip(
                    &(window.of(x) + signs(&[n, c, 1, 1], x) * config.eps),
                    config,
                );
                let candidate = best_x.copy();
                window.of(&candidate).copy_(&proposal);
                (candidate, window)
            }
            Norm::L2 => (l2_step(x, &best_x, p, config), Window::whole(x)),
        };
        let value = values.window(&candidate, &window);
        let improved = value.gt_tensor(&best_value).logical_and(&active);
        values.accept(&improved);
        best_x = candidate.where_self(&per_sample(&improved, x), &best_x);
        best_value = value.where_self(&improved, &best_value);
    }
    (best_x, best_value)
}

/// Each sample scaled to ℓ2 norm 1.
fn unit_l2(delta: &Tensor) -> Tensor {
    delta / (l2_norms(delta) + 1e-12)
}

/// The ℓ2 start: a grid of s×s tiles (s = H/5), each a signed [`eta`] pattern.
fn l2_start(x: &Tensor) -> Tensor {
    let size = x.size();
    let (n, c, h, w) = (size[0], size[1], size[2], size[3]);
    let s = (h / 5).max(1);
    let start = (h - 5 * s).max(0) / 2;
    let delta = x.zeros_like();
    let pattern = eta(s, x).view([1, 1, s, s]);
    let mut vh = start;
    for _ in 0..h / s {
        let mut vw = start;
        for _ in 0..w / s {
            if vh + s <= h && vw + s <= w {
                let mut tile = delta.i((.., .., vh..vh + s, vw..vw + s));
                tile += &pattern * signs(&[n, c, 1, 1], x);
            }
            vw += s;
        }
        vh += s;
    }
    delta
}

/// Square's ℓ2 window pattern: two halves of opposite sign, each a stack of concentric
/// rectangles weighted 1/(k+1)², of unit ℓ2 norm, transposed at random.
fn eta(s: i64, like: &Tensor) -> Tensor {
    let top = s / 2;
    let pattern = Tensor::cat(
        &[rectangles(top, s, like), -rectangles(s - top, s, like)],
        0,
    );
    let pattern = &pattern / (pattern.square().sum(Kind::Float).sqrt() + 1e-12);
    if random_offset(1) == 1 {
        pattern.transpose(0, 1).contiguous()
    } else {
        pattern
    }
}

fn rectangles(rows: i64, cols: i64, like: &Tensor) -> Tensor {
    let delta = Tensor::zeros([rows, cols], (Kind::Float, like.device()));
    if rows == 0 {
        return delta;
    }
    let (mut r, mut q) = (rows / 2, cols / 2);
    for k in 0..(rows / 2 + 1).max(cols / 2 + 1) {
        let (r0, q0) = (r.max(0), q.max(0));
        let (r1, q1) = ((r + 2 * k + 1).min(rows), (q + 2 * k + 1).min(cols));
        if r0 < r1 && q0 < q1 {
            let mut block = delta.i((r0..r1, q0..q1));
            block += 1.0 / ((k + 1) * (k + 1)) as f64;
        }
        r -= 1;
        q -= 1;
    }
    &delta / (delta.square().sum(Kind::Float).sqrt() + 1e-12)
}

/// One ℓ2 proposal: a new signed pattern in window 1 that keeps the window's old mass, window 2
/// emptied, the freed budget moved into window 1, the whole perturbation rescaled to norm ε.
fn l2_step(x: &Tensor, best: &Tensor, p: f64, config: &AttackConfig) -> Tensor {
    let size = x.size();
    let (n, c, h, w) = (size[0], size[1], size[2], size[3]);
    let mut s = ((p * (h * w) as f64).sqrt().round() as i64).max(3);
    if s % 2 == 0 {
        s += 1;
    }
    let s = s.min(h.min(w));
    let (vh, vw) = (random_offset(h - s), random_offset(w - s));
    let (vh2, vw2) = (random_offset(h - s), random_offset(w - s));
    let delta = best - x;
    let window_norm = |t: &Tensor| {
        t.square()
            .sum_dim_intlist([2i64, 3].as_slice(), true, Kind::Float)
            .sqrt()
    };
    let window = |t: &Tensor, r: i64, q: i64| t.i((.., .., r..r + s, q..q + s));
    let old = window(&delta, vh, vw);
    let mask = Tensor::zeros([1, 1, h, w], (Kind::Float, x.device()));
    let _ = window(&mask, vh, vw).fill_(1.0);
    let _ = window(&mask, vh2, vw2).fill_(1.0);
    let windows_norm = window_norm(&(&delta * &mask));
    let image_norm = l2_norms(&delta);
    let fresh = eta(s, x).view([1, 1, s, s]) * signs(&[n, c, 1, 1], x);
    let fresh = fresh + &old / (window_norm(&old) + 1e-12);
    let budget = ((-image_norm.square() + config.eps * config.eps).clamp_min(0.0) / c as f64
        + windows_norm.square())
    .sqrt();
    let fresh = &fresh / (window_norm(&fresh) + 1e-12) * budget;
    let delta = delta.copy();
    let _ = window(&delta, vh2, vw2).fill_(0.0);
    window(&delta, vh, vw).copy_(&fresh);
    clip(&(x + unit_l2(&delta) * config.eps), config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn schedule_halves_at_autoattacks_marks() {
        assert_eq!(p_schedule(0, 10_000), 0.8);
        assert_eq!(p_schedule(11, 10_000), 0.4);
        assert_eq!(p_schedule(9_000, 10_000), 0.8 / 512.0);
        // Rescaled: query 2,500 of 5,000 is AutoAttack's 5,000 of 10,000.
        assert_eq!(p_schedule(2_500, 5_000), 0.8 / 128.0);
    }

    #[test]
    fn eta_has_unit_norm_and_opposite_halves() {
        let pattern = eta(6, &Tensor::zeros([1], (Kind::Float, Device::Cpu)));
        let norm = pattern.square().sum(Kind::Float).sqrt().double_value(&[]);
        assert!((norm - 1.0).abs() < 1e-5);
        assert!(pattern.sum(Kind::Float).abs().double_value(&[]) < 1e-5);
    }

    /// A linear score on images: Square must raise it close to the ℓ∞ optimum ε‖w‖₁ and stay
    /// in the ball and the box, for both norms.
    #[test]
    fn climbs_a_linear_score_inside_the_ball() {
        tch::manual_seed(0);
        let w = Tensor::randn([1, 1, 8, 8], (Kind::Float, Device::Cpu));
        let x = Tensor::rand([8, 1, 8, 8], (Kind::Float, Device::Cpu)) * 0.5 + 0.25;
        let score =
            |x: &Tensor| (x * &w).sum_dim_intlist([1i64, 2, 3].as_slice(), false, Kind::Float);
        for (norm, eps, optimum) in [
            (
                Norm::Linf,
                0.1,
                0.1 * w.abs().sum(Kind::Float).double_value(&[]),
            ),
            (
                Norm::L2,
                0.5,
                0.5 * w.square().sum(Kind::Float).sqrt().double_value(&[]),
            ),
        ] {
            let config = AttackConfig {
                norm,
                ..AttackConfig::linf(eps, 1_000, 1.0)
            };
            let x_adv = square(&score, &x, &config, None).unwrap();
            let gain = (score(&x_adv) - score(&x))
                .mean(Kind::Float)
                .double_value(&[]);
            assert!(gain > 0.5 * optimum, "{norm:?}: gain {gain} of {optimum}");
            assert!(
                gain <= optimum + 1e-4,
                "{norm:?}: gain {gain} above {optimum}"
            );
            crate::attack::test_support::assert_in_threat(&x_adv, &x, norm, eps);
        }
    }

    #[test]
    fn stops_querying_a_sample_once_it_passes_the_threshold() {
        let x = Tensor::full([4, 1, 8, 8], 0.5, (Kind::Float, Device::Cpu));
        let calls = std::cell::Cell::new(0);
        let score = |x: &Tensor| {
            calls.set(calls.get() + 1);
            x.sum_dim_intlist([1i64, 2, 3].as_slice(), false, Kind::Float) - 32.0
        };
        let config = AttackConfig::linf(0.1, 200, 1.0);
        let _ = square(&score, &x, &config, Some(-1e9)).unwrap();
        // Every sample is above the threshold from the start: only the clean point and the
        // stripes were evaluated.
        assert_eq!(calls.get(), 2);
        // Under a threshold no sample reaches, every query is made.
        calls.set(0);
        let _ = square(&score, &x, &config, Some(1e9)).unwrap();
        assert_eq!(calls.get(), 202);
    }
}
