//! Projected gradient ascent (Madry et al.; SPEC §4), and FGSM as its one-step special case.
use super::{
    ascent_direction, best_over_restarts, keep_best, project, unbeaten, value_and_grad,
    AttackConfig, Objective,
};
use crate::error::Result;
use tch::Tensor;

/// PGD: `steps` ascent steps of size α, each followed by projection onto the ε-ball ∩ box;
/// with restarts, each sample keeps its best iterate over every step of every run.
/// Returns the adversarial batch (detached).
pub fn pgd(objective: &Objective, x: &Tensor, config: &AttackConfig) -> Result<Tensor> {
    let x = x.detach();
    best_over_restarts(&x, config, |start| pgd_run(objective, &x, start, config))
}

/// One PGD run from `start`: the best iterate and its value, per sample.
fn pgd_run(
    objective: &Objective,
    x: &Tensor,
    start: Tensor,
    config: &AttackConfig,
) -> (Tensor, Tensor) {
    let mut x_adv = start;
    let mut best_x = x_adv.shallow_clone();
    let mut best_value = unbeaten(x);
    for _ in 0..config.steps {
        let (value, grad) = value_and_grad(objective, &x_adv);
        keep_best(&mut best_x, &mut best_value, &x_adv, &value);
        x_adv = project(
            &(&x_adv + ascent_direction(&grad, config.norm) * config.step_size),
            x,
            config,
        );
    }
    let value = tch::no_grad(|| objective(&x_adv)).detach();
    keep_best(&mut best_x, &mut best_value, &x_adv, &value);
    (best_x, best_value)
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
