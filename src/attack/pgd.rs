//! Projected gradient ascent (Madry et al.; SPEC §4), and FGSM as its one-step special case.
use super::{
    ascent_direction, best_over_restarts, keep_best_rows, not_above, project, unbeaten,
    value_and_grad, AttackConfig, Objective, RowObjective,
};
use crate::error::Result;
use tch::{Kind, Tensor};

/// PGD: `steps` ascent steps of size α, each followed by projection onto the ε-ball ∩ box;
/// with restarts, each sample keeps its best iterate over every step of every run.
/// Returns the adversarial batch (detached).
pub fn pgd(objective: &Objective, x: &Tensor, config: &AttackConfig) -> Result<Tensor> {
    let by_rows = |x: &Tensor, _: &Tensor| objective(x);
    best_over_restarts(x, config, None, |x, rows, start| {
        pgd_run(&by_rows, x, rows, start, config, None)
    })
}

/// PGD for an evaluation that reads only whether each sample's value rose above `stop_above`
/// (for a classifier: whether some iterate fooled it). A sample leaves the batch at its first
/// iterate above the threshold, and a restart runs only on the samples no earlier run took
/// above it; the others follow the same iterates as in [`pgd`]. So which samples pass is what
/// the whole run of [`pgd`] would give, at the cost of the samples still in play: a non-robust
/// model takes about one step instead of all of them (issue 16).
pub fn pgd_until(
    objective: &RowObjective,
    x: &Tensor,
    config: &AttackConfig,
    stop_above: f64,
) -> Result<Tensor> {
    best_over_restarts(x, config, Some(stop_above), |x, rows, start| {
        pgd_run(objective, x, rows, start, config, Some(stop_above))
    })
}

/// One PGD run on the batch rows `rows` (their images `x`) from `start`: the best iterate and
/// its value, per sample. With `stop_above`, a sample is not stepped further once its value
/// exceeds it.
fn pgd_run(
    objective: &RowObjective,
    x: &Tensor,
    rows: &Tensor,
    start: Tensor,
    config: &AttackConfig,
    stop_above: Option<f64>,
) -> (Tensor, Tensor) {
    let mut best_x = start.shallow_clone();
    let mut best_value = unbeaten(x);
    // Positions in `x` of the samples still stepped, and their iterates.
    let mut live = Tensor::arange(x.size()[0], (Kind::Int64, x.device()));
    let mut x_live = x.shallow_clone();
    let mut x_adv = start;
    for step in 0..=config.steps {
        let live_rows = rows.index_select(0, &live);
        let at = |z: &Tensor| objective(z, &live_rows);
        if step == config.steps {
            let value = tch::no_grad(|| at(&x_adv)).detach();
            keep_best_rows(&mut best_x, &mut best_value, &live, &x_adv, &value);
            break;
        }
        let (value, mut grad) = value_and_grad(&at, &x_adv);
        keep_best_rows(&mut best_x, &mut best_value, &live, &x_adv, &value);
        if let Some(threshold) = stop_above {
            let going = not_above(&value, threshold);
            if going.size()[0] == 0 {
                break;
            }
            let going = padded(&going, &value, threshold, x.size()[0]);
            if going.size()[0] < live.size()[0] {
                live = live.index_select(0, &going);
                x_live = x.index_select(0, &live);
                x_adv = x_adv.index_select(0, &going);
                grad = grad.index_select(0, &going);
            }
        }
        x_adv = project(
            &(&x_adv + ascent_direction(&grad, config.norm) * config.step_size),
            &x_live,
            config,
        );
    }
    (best_x, best_value)
}

/// The positions `going` of a batch, topped up with positions of passed samples (still
/// stepped, their best kept) to a multiple of an eighth of the run's `rows`: a batch shrinks
/// through at most eight sizes, whose buffers the allocator then reuses from batch to batch
/// instead of fragmenting its heap on a new size at every step (issue 16).
fn padded(going: &Tensor, value: &Tensor, threshold: f64, rows: i64) -> Tensor {
    let quantum = (rows + 7) / 8;
    let size = (going.size()[0] + quantum - 1) / quantum * quantum;
    let missing = size.min(value.size()[0]) - going.size()[0];
    if missing == 0 {
        return going.shallow_clone();
    }
    let passed = value.gt(threshold).nonzero().squeeze_dim(1);
    Tensor::cat(&[going, &passed.narrow(0, 0, missing)], 0)
        .sort(0, false)
        .0
}

/// FGSM (Goodfellow et al.): one step of size ε from the input.
pub fn fgsm(objective: &Objective, x: &Tensor, config: &AttackConfig) -> Result<Tensor> {
    let one_step = AttackConfig {
        steps: 1,
        step_size: config.eps.max(f64::MIN_POSITIVE),
        random_start: false,
        restarts: 1,
        ..*config
    };
    pgd(objective, x, &one_step)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attack::Norm;
    use tch::{Device, Kind};

    /// A linear binary classifier f(x) = wᵀx + b with labels y ∈ {−1, +1}; the objective is
    /// the negative margin −y·f(x), so the attack lowers the margin.
    fn linear_problem() -> (Tensor, Tensor, Tensor, f64) {
        let w = Tensor::from_slice(&[0.5f32, -1.5, 2.0, 0.25, -0.75, 1.0]);
        let x = Tensor::rand([32, 6], (Kind::Float, Device::Cpu)) * 0.2 + 0.4;
        let y = Tensor::from_slice(&[1.0f32, -1.0]).repeat([16]);
        (w, x, y, 0.1)
    }

    fn margin(w: &Tensor, y: &Tensor, x: &Tensor) -> Tensor {
        (x.matmul(w) + 0.3) * y
    }

    #[test]
    fn reaches_the_analytic_optimum_of_a_linear_classifier() {
        let (w, x, y, eps) = linear_problem();
        let objective = |x: &Tensor| -margin(&w, &y, x);
        for (norm, dual_norm) in [
            (Norm::Linf, w.abs().sum(Kind::Float).double_value(&[])),
            (
                Norm::L2,
                w.square().sum(Kind::Float).sqrt().double_value(&[]),
            ),
        ] {
            let config = AttackConfig {
                norm,
                steps: 20,
                step_size: eps / 4.0,
                ..AttackConfig::linf(eps, 1, 1.0)
            };
            let x_adv = pgd(&objective, &x, &config).unwrap();
            let drop = margin(&w, &y, &x) - margin(&w, &y, &x_adv);
            let expected = eps * dual_norm;
            let worst_error = (drop - expected).abs().max().double_value(&[]);
            assert!(
                worst_error < 1e-4,
                "{norm:?}: margin fell by ε‖w‖ ± {worst_error}"
            );
        }
    }

    #[test]
    fn stays_in_the_ball_and_the_box() {
        let x = Tensor::rand([64, 1, 5, 5], (Kind::Float, Device::Cpu));
        let target = Tensor::randn([64, 1, 5, 5], (Kind::Float, Device::Cpu)) * 3.0;
        let objective =
            |x: &Tensor| (x * &target).sum_dim_intlist([1i64, 2, 3].as_slice(), false, Kind::Float);
        for norm in [Norm::Linf, Norm::L2] {
            let eps = 0.3;
            let config = AttackConfig {
                norm,
                random_start: true,
                restarts: 2,
                ..AttackConfig::linf(eps, 7, 0.2)
            };
            let x_adv = pgd(&objective, &x, &config).unwrap();
            crate::attack::test_support::assert_in_threat(&x_adv, &x, norm, eps);
            assert!(bool::try_from(objective(&x_adv).ge_tensor(&objective(&x)).all()).unwrap());
        }
    }

    #[test]
    fn more_restarts_find_stronger_perturbations() {
        tch::manual_seed(1);
        let x = Tensor::rand([128, 8], (Kind::Float, Device::Cpu));
        // A wiggly objective with many local optima.
        let objective = |x: &Tensor| {
            (x * 17.0)
                .sin()
                .sum_dim_intlist([1i64].as_slice(), false, Kind::Float)
        };
        let run = |restarts| {
            tch::manual_seed(3);
            let config = AttackConfig {
                random_start: true,
                restarts,
                ..AttackConfig::linf(0.3, 5, 0.05)
            };
            objective(&pgd(&objective, &x, &config).unwrap())
        };
        let (one, five) = (run(1), run(5));
        // Alone, the first of five restarts repeats the single run and five are never weaker
        // per sample; tests on other threads share libtorch's generator, so the starts may
        // differ, and the best of five then still wins for about 5 samples in 6.
        let at_least = five.ge_tensor(&one).to_kind(Kind::Float).mean(Kind::Float);
        assert!(at_least.double_value(&[]) > 0.7, "{at_least}");
        assert!(five.sum(Kind::Float).double_value(&[]) > one.sum(Kind::Float).double_value(&[]));
    }

    #[test]
    fn until_drops_each_sample_at_its_first_pass_and_restarts_only_the_others() {
        // Value −w·z + d_row: each ℓ∞ step of 0.025 raises it by 0.025‖w‖₁ = 0.15, up to 0.6
        // at the ball's edge (ε = 0.1). Clean values 0.07 − 0.15j pass 0 at step j for
        // j ≤ 4 and never for j ≥ 5; the offsets are looked up by row, so a wrong row mapping
        // would change who passes.
        let w = Tensor::from_slice(&[0.5f32, -1.5, 2.0, 0.25, -0.75, 1.0]);
        let j: Vec<i64> = (0..16).map(|i| i % 8).collect();
        let offsets = Tensor::from_slice(
            &j.iter()
                .map(|&j| 0.82 - 0.15 * j as f32)
                .collect::<Vec<f32>>(),
        );
        let x = Tensor::full([16, 6], 0.5, (Kind::Float, Device::Cpu));
        let rows_seen = std::cell::RefCell::new(Vec::<Vec<i64>>::new());
        let objective = |z: &Tensor, rows: &Tensor| {
            rows_seen
                .borrow_mut()
                .push(Vec::<i64>::try_from(rows).unwrap());
            -z.matmul(&w) + offsets.index_select(0, rows)
        };
        let whole = |z: &Tensor| -z.matmul(&w) + &offsets;
        let config = AttackConfig {
            restarts: 2,
            ..AttackConfig::linf(0.1, 10, 0.025)
        };
        let until = pgd_until(&objective, &x, &config, 0.0).unwrap();
        let full = pgd(&whole, &x, &AttackConfig::linf(0.1, 10, 0.025)).unwrap();
        let passed = |t: &Tensor| Vec::<bool>::try_from(whole(t).gt(0.0)).unwrap();
        let expected: Vec<bool> = j.iter().map(|&j| j <= 4).collect();
        assert_eq!(passed(&until), expected);
        assert_eq!(passed(&full), expected);
        // A passing sample keeps its first passing iterate (value 0.07), the others the
        // whole run's best.
        let values = Vec::<f32>::try_from(whole(&until)).unwrap();
        let full_values = Vec::<f32>::try_from(whole(&full)).unwrap();
        for (i, &j) in j.iter().enumerate() {
            let want = if j <= 4 { 0.07 } else { full_values[i] };
            assert!((values[i] - want).abs() < 1e-5, "sample {i}: {}", values[i]);
        }
        // The first run evaluates a sample passing at step j on j + 1 iterates and the others
        // on all 11; the restart only the 6 that never passed.
        let calls = rows_seen.into_inner();
        let first_run: usize = calls[..11].iter().map(Vec::len).sum();
        assert_eq!(first_run, 2 * (1 + 2 + 3 + 4 + 5) + 6 * 11);
        let restart: Vec<i64> = calls[11..].iter().flatten().copied().collect();
        assert_eq!(restart.len(), 6 * 11);
        assert!(
            restart.iter().all(|&row| j[row as usize] >= 5),
            "{restart:?}"
        );
    }

    #[test]
    fn a_shrinking_batch_is_topped_up_to_an_eighth_of_its_run_with_passed_samples() {
        // 16 rows: sizes are multiples of 2. Samples 0, 2 and 5 are still in play.
        let value = Tensor::from_slice(&[-1.0f32, 1.0, -1.0, 1.0, 1.0, -1.0, 1.0]);
        let going = not_above(&value, 0.0);
        let topped = Vec::<i64>::try_from(padded(&going, &value, 0.0, 16)).unwrap();
        assert_eq!(topped, [0, 1, 2, 5]);
        // Already a multiple, or capped by the batch at hand: as it is.
        let even = not_above(&value.narrow(0, 0, 4), 0.0);
        assert_eq!(padded(&even, &value.narrow(0, 0, 4), 0.0, 16).size(), [2]);
        let three = not_above(&value.narrow(0, 0, 3), 0.0);
        let all = Vec::<i64>::try_from(padded(&three, &value.narrow(0, 0, 3), 0.0, 48)).unwrap();
        assert_eq!(all, [0, 1, 2]);
    }

    #[test]
    fn fgsm_takes_one_full_step_and_eps_zero_changes_nothing() {
        let (w, x, y, eps) = linear_problem();
        let objective = |x: &Tensor| -margin(&w, &y, x);
        let x_adv = fgsm(&objective, &x, &AttackConfig::linf(eps, 1, 1.0)).unwrap();
        let expected = (&x - (y.unsqueeze(1) * w.sign().unsqueeze(0)) * eps).clamp(0.0, 1.0);
        assert!(x_adv.allclose(&expected, 1e-6, 1e-6, false));
        let same = pgd(&objective, &x, &AttackConfig::linf(0.0, 10, 0.1)).unwrap();
        assert!(same.equal(&x));
    }

    #[test]
    fn rejects_invalid_settings() {
        let x = Tensor::zeros([1, 2], (Kind::Float, Device::Cpu));
        let objective = |x: &Tensor| x.sum_dim_intlist([1i64].as_slice(), false, Kind::Float);
        for (config, flag) in [
            (AttackConfig::linf(-0.1, 10, 0.1), "eps"),
            (AttackConfig::linf(f64::NAN, 10, 0.1), "eps"),
            (AttackConfig::linf(0.3, 0, 0.1), "steps"),
            (AttackConfig::linf(0.3, 10, 0.0), "step_size"),
            (
                AttackConfig {
                    restarts: 0,
                    ..AttackConfig::linf(0.3, 10, 0.1)
                },
                "restarts",
            ),
        ] {
            let e = pgd(&objective, &x, &config).unwrap_err().to_string();
            assert!(e.starts_with(flag), "{e}");
        }
    }
}
