//! APGD (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of
//! diverse parameter-free attacks"), the core of AutoAttack: PGD with momentum 0.75 and a
//! per-sample step size that starts at 2ε and halves at checkpoints where progress stalled.
use super::{
    ascent_direction, best_over_restarts, keep_best, per_sample, project, value_and_grad,
    AttackConfig, Objective,
};
use crate::error::Result;
use tch::{Kind, Tensor};

const MOMENTUM: f64 = 0.75;
/// ρ: a checkpoint halves the step when fewer than this fraction of steps since the last
/// checkpoint increased the objective.
const RHO: f64 = 0.75;

/// The checkpoint lengths: the first after 22 % of the iterations, then shrinking by 3 % of
/// them each time down to 6 %.
fn checkpoint_lengths(steps: usize) -> (usize, usize, usize) {
    let fraction = |f: f64| ((f * steps as f64) as usize).max(1);
    (fraction(0.22), fraction(0.03), fraction(0.06))
}

/// Runs APGD with `config.steps` iterations (its `step_size` is ignored: APGD sets its own)
/// and returns, per sample, the iterate with the highest objective over all restarts. A run
/// ends early once every sample's best value exceeds `stop_above` (as in [`super::square`]:
/// for a classifier, once each sample's best point fools it, where further iterations could
/// only trade it for another fooling point; issue 16).
pub fn apgd(
    objective: &Objective,
    x: &Tensor,
    config: &AttackConfig,
    stop_above: Option<f64>,
) -> Result<Tensor> {
    let x = x.detach();
    best_over_restarts(&x, config, None, |x, _, start| {
        apgd_run(objective, x, start, config, stop_above)
    })
}

fn apgd_run(
    objective: &Objective,
    x: &Tensor,
    start: Tensor,
    config: &AttackConfig,
    stop_above: Option<f64>,
) -> (Tensor, Tensor) {
    let n = x.size()[0];
    let (mut period, shrink, min_period) = checkpoint_lengths(config.steps);
    let mut step = Tensor::full([n], 2.0 * config.eps, (Kind::Float, x.device()));
    let mut x_adv = start;
    let (mut value, mut grad) = value_and_grad(objective, &x_adv);
    let (mut best_x, mut best_value, mut best_grad) = (
        x_adv.shallow_clone(),
        value.shallow_clone(),
        grad.shallow_clone(),
    );
    let mut previous_x = x_adv.shallow_clone();
    let mut increases = Tensor::zeros([n], (Kind::Float, x.device()));
    let mut best_at_checkpoint = best_value.shallow_clone();
    let mut reduced_at_checkpoint = Tensor::zeros([n], (Kind::Bool, x.device()));
    let mut since_checkpoint = 0;
    for i in 0..config.steps {
        let momentum = if i == 0 { 1.0 } else { MOMENTUM };
        let z = project(
            &(&x_adv + ascent_direction(&grad, config.norm) * per_sample(&step, &x_adv)),
            x,
            config,
        );
        let moved = &x_adv + (z - &x_adv) * momentum + (&x_adv - &previous_x) * (1.0 - momentum);
        previous_x = x_adv;
        x_adv = project(&moved, x, config);
        let previous_value = value;
        (value, grad) = value_and_grad(objective, &x_adv);
        increases += value.gt_tensor(&previous_value).to_kind(Kind::Float);
        let improved = value.gt_tensor(&best_value);
        best_grad = grad.where_self(&per_sample(&improved, &grad), &best_grad);
        keep_best(&mut best_x, &mut best_value, &x_adv, &value);
        if stop_above.is_some_and(|t| bool::try_from(best_value.gt(t).all()).unwrap_or(false)) {
            break;
        }
        since_checkpoint += 1;
        if since_checkpoint == period {
            let oscillating = increases.le(RHO * period as f64);
            let stalled = reduced_at_checkpoint
                .logical_not()
                .logical_and(&best_at_checkpoint.ge_tensor(&best_value));
            let reduce = oscillating.logical_or(&stalled);
            step = (&step * 0.5).where_self(&reduce, &step);
            let mask = per_sample(&reduce, &x_adv);
            x_adv = best_x.where_self(&mask, &x_adv);
            grad = best_grad.where_self(&mask, &grad);
            reduced_at_checkpoint = reduce;
            best_at_checkpoint = best_value.shallow_clone();
            increases = increases.zeros_like();
            since_checkpoint = 0;
            period = period.saturating_sub(shrink).max(min_period);
        }
    }
    (best_x, best_value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attack::{pgd, Norm};
    use tch::Device;

    #[test]
    fn checkpoints_follow_the_paper_schedule() {
        assert_eq!(checkpoint_lengths(100), (22, 3, 6));
        assert_eq!(checkpoint_lengths(5), (1, 1, 1));
    }

    #[test]
    fn finds_the_linear_optimum_and_respects_the_ball() {
        let w = Tensor::from_slice(&[1.0f32, -2.0, 0.5]);
        let x = Tensor::rand([16, 3], (Kind::Float, Device::Cpu)) * 0.2 + 0.4;
        let objective = |x: &Tensor| -x.matmul(&w);
        for (norm, dual) in [(Norm::Linf, 3.5), (Norm::L2, 5.25f64.sqrt())] {
            let config = AttackConfig {
                norm,
                ..AttackConfig::linf(0.1, 20, 1.0)
            };
            let x_adv = apgd(&objective, &x, &config, None).unwrap();
            let drop = objective(&x_adv) - objective(&x);
            assert!(
                (drop - 0.1 * dual).abs().max().double_value(&[]) < 1e-4,
                "{norm:?}"
            );
        }
    }

    #[test]
    fn stops_once_every_sample_passes_the_threshold_and_not_before() {
        let w = Tensor::from_slice(&[1.0f32, -2.0, 0.5]);
        let x = Tensor::full([8, 3], 0.5, (Kind::Float, Device::Cpu));
        let calls = std::cell::Cell::new(0);
        let objective = |z: &Tensor| {
            calls.set(calls.get() + 1);
            -z.matmul(&w)
        };
        let config = AttackConfig::linf(0.1, 50, 1.0);
        let clean = objective(&x);
        // Every sample can raise its value by 0.35 (ε‖w‖₁): a threshold 0.1 above the clean
        // value is passed within a few steps, one 1.0 above it never.
        for (gain, stops) in [(0.1, true), (1.0, false)] {
            let threshold = clean.double_value(&[0]) + gain;
            calls.set(0);
            let x_adv = apgd(&objective, &x, &config, Some(threshold)).unwrap();
            let evaluations = calls.get();
            let passed = bool::try_from(objective(&x_adv).gt(threshold).all()).unwrap();
            assert_eq!((evaluations < 51, passed), (stops, stops), "gain {gain}");
        }
    }

    #[test]
    fn is_at_least_as_strong_as_pgd_on_a_rugged_objective() {
        let x = Tensor::rand([256, 10], (Kind::Float, Device::Cpu));
        let objective = |x: &Tensor| {
            ((x * 11.0).sin() * (x * 3.0).cos()).sum_dim_intlist(
                [1i64].as_slice(),
                false,
                Kind::Float,
            )
        };
        let config = AttackConfig::linf(0.2, 50, 0.02);
        let by_pgd = objective(&pgd(&objective, &x, &config).unwrap())
            .mean(Kind::Float)
            .double_value(&[]);
        let by_apgd = objective(&apgd(&objective, &x, &config, None).unwrap())
            .mean(Kind::Float)
            .double_value(&[]);
        assert!(by_apgd >= by_pgd - 1e-3, "APGD {by_apgd} < PGD {by_pgd}");
    }
}
