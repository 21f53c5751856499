//! Checks that an evaluation's attacks worked: the signs of gradient masking that AutoAttack
//! raises (Croce & Hein 2020, `flags_doc.md`) and the sanity checks of Carlini et al. (2019,
//! "On evaluating adversarial robustness"): gradients that are exactly zero at clean points,
//! the black-box Square breaking what the gradient attacks could not, accuracy that does not
//! fall towards chance as ε grows, and more PGD iterations giving a weaker attack.
use super::robustness::{evaluate, RobustnessReport};
use crate::attack::classifier::{ClassifierAttack, Method};
use crate::attack::{losses, AttackConfig, Norm};
use crate::data::{batches::epoch_batches, LabelledImages};
use crate::error::Result;
use crate::nn::Classifier;
use serde::Serialize;
use tch::{Kind, Tensor};

/// AutoAttack's tolerance: Square lowering accuracy by more than this is flagged.
pub const SQUARE_TOLERANCE: f64 = 0.002;
/// Accuracy points by which a check may miss before it is flagged (sampling noise of a
/// deterministic attack on the same images is zero, but a sample on a decision boundary may
/// flip with float rounding).
pub const SANITY_TOLERANCE: f64 = 0.005;
/// Accuracy by which a cascade's first attack alone may exceed the whole suite's before it is
/// flagged: beyond it, one attack (the paper's PGD-10) overstates robustness, as it did for the
/// README's broken draws (PGD-10 53.5 %, the strong suite 4.9 %).
pub const FIRST_ATTACK_TOLERANCE: f64 = 0.10;

/// Whether an accuracy difference is more than `tolerance`, as every check states its rule.
/// Accuracies are fractions of whole images, so a difference of exactly the tolerance (2
/// images of 1,000 for Square's 0.2 points) can come out a rounding error above it; that is
/// not more.
fn exceeds(difference: f64, tolerance: f64) -> bool {
    difference > tolerance + 1e-9
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct MaskingChecks {
    /// Images whose cross-entropy has an exactly zero input gradient at the clean point:
    /// gradient attacks cannot start on them.
    pub zero_gradient_images: usize,
    /// Accuracy Square removed after the gradient attacks before it had failed (a cascade that
    /// ends with Square).
    pub square_gain: Option<f64>,
    /// Accuracy after the cascade's first attack alone minus after the whole suite.
    pub first_attack_gap: Option<f64>,
    /// The accuracy-against-ε curve and PGD-10 against PGD-100, when asked for.
    pub sanity: Option<Sanity>,
    /// One sentence per raised flag; empty when nothing looked wrong.
    pub flags: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Sanity {
    /// Class share a constant prediction reaches: the accuracy a sound model falls to once the
    /// ball holds one image for every input.
    pub chance: f64,
    /// (ε, accuracy under PGD with random start), ε from 0 to [`sanity_radius`].
    pub curve: Vec<(f64, f64)>,
    pub pgd_10: f64,
    pub pgd_100: f64,
}

/// The radius at which the ball around any image in [0, 1]^d contains the constant gray image
/// 0.5: 0.5 under ℓ∞ and 0.5·√d under ℓ2. There every input can be sent to one image, so a
/// classifier is right at most on its largest class.
pub fn sanity_radius(norm: Norm, dimension: i64) -> f64 {
    match norm {
        Norm::Linf => 0.5,
        Norm::L2 => 0.5 * (dimension as f64).sqrt(),
    }
}

/// Counts images of `indices` whose cross-entropy gradient with respect to the input is
/// exactly zero.
pub fn zero_gradient_images(
    model: &dyn Classifier,
    data: &LabelledImages,
    indices: &[i64],
    batch_size: usize,
) -> Result<usize> {
    let mut zero = 0;
    for index in epoch_batches(indices, batch_size, None, false) {
        let (x, y) = data.batch(&index);
        let x = x.set_requires_grad(true);
        let loss = losses::cross_entropy(&model.forward_t(&x, false), &y).sum(Kind::Float);
        let grad = Tensor::run_backward(&[loss], &[&x], false, false).remove(0);
        let per_image = grad.abs().reshape([grad.size()[0], -1]).sum_dim_intlist(
            [1i64].as_slice(),
            false,
            Kind::Float,
        );
        zero += per_image.eq(0.0).sum(Kind::Int64).int64_value(&[]) as usize;
    }
    Ok(zero)
}

/// Accuracy Square took away in a cascade ending with it, after other attacks.
pub fn square_gain(report: &RobustnessReport) -> Option<f64> {
    let n = report.attacks.len();
    (report.cascade && n >= 2 && report.attacks[n - 1].settings.method == Method::Square)
        .then(|| report.attacks[n - 2].accuracy - report.attacks[n - 1].accuracy)
}

/// How much more accurate the model is after a cascade's first attack than after all of them.
pub fn first_attack_gap(report: &RobustnessReport) -> Option<f64> {
    (report.cascade && report.attacks.len() >= 2)
        .then(|| report.attacks[0].accuracy - report.worst_case_accuracy)
}

/// The sanity curve: PGD-20 with a random start (step 2.5·ε/20, Madry et al.'s rule) at
/// radii from 0 to [`sanity_radius`], and PGD-10 against PGD-100 at the evaluation's ε.
pub fn sanity(
    model: &dyn Classifier,
    data: &LabelledImages,
    indices: &[i64],
    batch_size: usize,
    base: &AttackConfig,
) -> Result<Sanity> {
    let dimension = data.images.numel() as i64 / data.len().max(1);
    let top = sanity_radius(base.norm, dimension);
    let mut radii: Vec<f64> = [0.0, 0.5, 1.0, 2.0]
        .iter()
        .map(|f| f * base.eps)
        .chain((1..=4).map(|k| top * k as f64 / 4.0))
        .filter(|&e| e <= top)
        .collect();
    radii.sort_by(f64::total_cmp);
    radii.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
    let pgd = |config: AttackConfig| ClassifierAttack {
        method: Method::Pgd,
        config,
    };
    let at = |eps: f64| {
        pgd(AttackConfig {
            eps,
            steps: 20,
            step_size: (2.5 * eps / 20.0).max(f64::MIN_POSITIVE),
            random_start: true,
            restarts: 1,
            ..*base
        })
    };
    let steps = |steps: usize| {
        pgd(AttackConfig {
            steps,
            step_size: 2.5 * base.eps / steps as f64,
            ..*base
        })
    };
    let mut attacks: Vec<ClassifierAttack> = radii.iter().map(|&e| at(e)).collect();
    attacks.extend([steps(10), steps(100)]);
    let report = evaluate(model, data, Some(indices), batch_size, &attacks)?;
    let accuracy: Vec<f64> = report.attacks.iter().map(|a| a.accuracy).collect();
    let labels = data.labels.index_select(
        0,
        &Tensor::from_slice(indices).to_device(data.labels.device()),
    );
    let classes = labels.max().int64_value(&[]) + 1;
    let largest = labels
        .bincount::<Tensor>(None, classes)
        .max()
        .int64_value(&[]);
    Ok(Sanity {
        chance: largest as f64 / indices.len().max(1) as f64,
        curve: radii.into_iter().zip(accuracy.iter().copied()).collect(),
        pgd_10: accuracy[accuracy.len() - 2],
        pgd_100: accuracy[accuracy.len() - 1],
    })
}

impl MaskingChecks {
    /// Collects the checks and states a flag for each that failed.
    pub fn new(
        zero_gradient_images: usize,
        report: &RobustnessReport,
        sanity: Option<Sanity>,
    ) -> Self {
        let square_gain = square_gain(report);
        let first_attack_gap = first_attack_gap(report);
        let mut flags = Vec::new();
        if zero_gradient_images > 0 {
            flags.push(format!(
                "{zero_gradient_images} of {} images have an exactly zero input gradient at the \
                 clean point: gradient attacks cannot move them",
                report.examples
            ));
        }
        if let Some(gain) = square_gain.filter(|&g| exceeds(g, SQUARE_TOLERANCE)) {
            flags.push(format!(
                "Square, which uses no gradients, lowered accuracy by {:.2} points after the \
                 gradient attacks: their gradients may be masked; try more queries and restarts \
                 or an adaptive attack",
                100.0 * gain
            ));
        }
        if let Some(gap) = first_attack_gap.filter(|&g| exceeds(g, FIRST_ATTACK_TOLERANCE)) {
            flags.push(format!(
                "{} alone left {:.2} % accurate, the whole suite {:.2} %: one attack overstates \
                 robustness by {:.2} points here; report the suite's accuracy",
                report.attacks[0].attack,
                100.0 * report.attacks[0].accuracy,
                100.0 * report.worst_case_accuracy,
                100.0 * gap
            ));
        }
        if let Some(s) = &sanity {
            let (top, last) = *s.curve.last().expect("the curve has a point");
            if exceeds(last - s.chance, 0.1) {
                flags.push(format!(
                    "at ε = {top:.3}, where every image can reach the same gray image, accuracy \
                     is {:.2} %, above the {:.2} % of the largest class: the attack is failing",
                    100.0 * last,
                    100.0 * s.chance
                ));
            }
            if let Some(w) = s
                .curve
                .windows(2)
                .find(|w| exceeds(w[1].1 - w[0].1, SANITY_TOLERANCE))
            {
                flags.push(format!(
                    "accuracy rose from {:.2} % at ε = {:.3} to {:.2} % at ε = {:.3}: a larger \
                     ball should never help the model",
                    100.0 * w[0].1,
                    w[0].0,
                    100.0 * w[1].1,
                    w[1].0
                ));
            }
            if exceeds(s.pgd_100 - s.pgd_10, SANITY_TOLERANCE) {
                flags.push(format!(
                    "PGD-100 left {:.2} % accurate, more than PGD-10's {:.2} %: more iterations \
                     should not weaken the attack",
                    100.0 * s.pgd_100,
                    100.0 * s.pgd_10
                ));
            }
        }
        Self {
            zero_gradient_images,
            square_gain,
            first_attack_gap,
            sanity,
            flags,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attack::classifier::autoattack_suite;
    use crate::eval::robustness::cascade;
    use tch::{nn, Device};

    /// A classifier whose logits are a step function of its input: zero gradient everywhere,
    /// so every gradient attack fails while Square, which only reads outputs, succeeds.
    #[derive(Debug)]
    struct Staircase;

    impl Classifier for Staircase {}

    impl nn::ModuleT for Staircase {
        fn forward_t(&self, x: &Tensor, _train: bool) -> Tensor {
            let mean = x.reshape([x.size()[0], -1]).mean_dim(1, false, Kind::Float);
            // Class 1 above a mean of 0.5, class 0 otherwise, by a margin in steps of 0.001:
            // the outputs answer every change, the gradient is zero.
            let step = ((&mean - 0.5) * 1000.0).round();
            let zero = step.zeros_like();
            Tensor::stack(
                &[-&step, step.shallow_clone(), zero.shallow_clone(), zero],
                1,
            )
        }
    }

    fn images(n: i64) -> LabelledImages {
        // Means 0.45 (class 0) and 0.55 (class 1): one ε = 0.1 step crosses the threshold.
        let x = Tensor::cat(
            &[
                Tensor::full([n / 2, 1, 8, 8], 0.45, (Kind::Float, Device::Cpu)),
                Tensor::full([n / 2, 1, 8, 8], 0.55, (Kind::Float, Device::Cpu)),
            ],
            0,
        );
        let y = Tensor::cat(
            &[
                Tensor::zeros([n / 2], (Kind::Int64, Device::Cpu)),
                Tensor::ones([n / 2], (Kind::Int64, Device::Cpu)),
            ],
            0,
        );
        LabelledImages::new((x * 255.0).round().to_kind(Kind::Uint8), y)
    }

    #[test]
    fn square_flags_more_than_two_images_in_a_thousand_not_exactly_two() {
        let report = |after_square: i64| RobustnessReport {
            examples: 1000,
            natural_accuracy: 0.9,
            cascade: true,
            attacks: [(Method::ApgdCe, 536), (Method::Square, after_square)]
                .into_iter()
                .map(
                    |(method, correct)| crate::eval::robustness::AttackAccuracy {
                        attack: format!("{method:?}"),
                        settings: ClassifierAttack {
                            method,
                            config: AttackConfig::linf(0.3, 100, 0.1),
                        },
                        accuracy: correct as f64 / 1000.0,
                        seconds: 1.0,
                    },
                )
                .collect(),
            worst_case_accuracy: after_square as f64 / 1000.0,
            samples: Vec::new(),
        };
        // 0.536 − 0.534 is 0.0020000000000000018 in f64.
        assert!(MaskingChecks::new(0, &report(534), None).flags.is_empty());
        let flags = MaskingChecks::new(0, &report(533), None).flags;
        assert!(
            flags.len() == 1 && flags[0].contains("by 0.30 points"),
            "{flags:?}"
        );
    }

    #[test]
    fn a_zero_gradient_model_raises_the_zero_gradient_square_and_first_attack_flags() {
        tch::manual_seed(0);
        let data = images(16);
        let all: Vec<i64> = (0..16).collect();
        let base = AttackConfig::linf(0.1, 10, 0.025);
        let suite = autoattack_suite(&base, 20, 200);
        let report = cascade(&Staircase, &data, &all, 16, &suite).unwrap();
        assert_eq!(report.natural_accuracy, 1.0);
        // APGD-CE and APGD-T see no gradient; Square breaks (nearly) everything.
        assert_eq!(report.attacks[0].accuracy, 1.0, "{report:?}");
        assert!(report.worst_case_accuracy < 0.5, "{report:?}");
        let zero = zero_gradient_images(&Staircase, &data, &all, 8).unwrap();
        assert_eq!(zero, 16);
        let checks = MaskingChecks::new(zero, &report, None);
        assert_eq!(checks.flags.len(), 3, "{:?}", checks.flags);
        assert!(checks.square_gain.unwrap() > 0.5);
        assert!(checks.first_attack_gap.unwrap() > 0.5);
        assert!(
            checks.flags[2].starts_with("APGD-CE")
                && checks.flags[2].contains("alone left 100.00 %"),
            "{:?}",
            checks.flags
        );
    }

    #[test]
    fn a_smooth_linear_model_raises_no_flag_and_falls_to_chance() {
        tch::manual_seed(0);
        let data = images(32);
        let all: Vec<i64> = (0..32).collect();
        // Logits (32 − Σx, Σx − 32, 0, 0): class 1 when the image sum is above 32.
        let w = Tensor::from_slice(&[-1.0f32, 1.0, 0.0, 0.0]).view([1, 4]);
        let b = Tensor::from_slice(&[32.0f32, -32.0, 0.0, 0.0]);
        let model = nn::func_t(move |x, _| {
            x.flatten(1, -1)
                .sum_dim_intlist([1i64].as_slice(), true, Kind::Float)
                * &w
                + &b
        });
        let base = AttackConfig::linf(0.01, 10, 0.0025);
        let report = cascade(&model, &data, &all, 16, &autoattack_suite(&base, 20, 200)).unwrap();
        let sanity = sanity(&model, &data, &all, 16, &base).unwrap();
        assert_eq!(sanity.chance, 0.5);
        assert_eq!(sanity.curve[0], (0.0, 1.0));
        assert_eq!(sanity.curve.last().unwrap().1, 0.0, "{sanity:?}");
        let zero = zero_gradient_images(&model, &data, &all, 16).unwrap();
        let checks = MaskingChecks::new(zero, &report, Some(sanity));
        assert!(checks.flags.is_empty(), "{:?}", checks.flags);
        assert_eq!(checks.square_gain, Some(0.0));
        assert!(checks.first_attack_gap.unwrap() <= FIRST_ATTACK_TOLERANCE);
    }
}
