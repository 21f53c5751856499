//! Attacks on a classifier's loss: the objective of evaluation and of adversarial training.
use super::{apgd, fgsm, losses, pgd, pgd::pgd_until, square, AttackConfig};
use crate::error::{Error, Result};
use crate::nn::{Classifier, Mapped};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// Target classes of APGD-T: the 9 highest-scoring wrong classes (AutoAttack's standard),
/// fewer when the classifier has fewer.
pub const APGD_T_TARGETS: i64 = 9;
/// Queries of Square in AutoAttack's standard version.
pub const SQUARE_QUERIES: usize = 5_000;
/// Iterations of each APGD run in AutoAttack's standard version.
pub const AUTOATTACK_STEPS: usize = 100;
/// Random restarts of the strong suite's random-start PGD, at the least.
pub const STRONG_RESTARTS: usize = 5;
/// Added to the loss of a misclassified point, so that APGD keeps a point that fools the
/// classifier over any that does not (AutoAttack returns the fooling iterate, not the one of
/// highest loss). Constant almost everywhere: the gradient is unchanged.
const FOOLED_BONUS: f64 = 1e4;
/// A [`fooled_first`] value above this is a fooling point's: a correctly classified point's
/// loss is far below it (cross-entropy at most ln(classes), the targeted DLR at most 0).
const FOOLED_ABOVE: f64 = FOOLED_BONUS / 2.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// PGD on the cross-entropy.
    Pgd,
    /// FGSM on the cross-entropy.
    Fgsm,
    /// APGD on the cross-entropy.
    ApgdCe,
    /// APGD on the difference-of-logits-ratio loss.
    ApgdDlr,
    /// APGD on the targeted DLR loss, toward each of the 9 highest-scoring wrong classes in turn
    /// (APGD_T_TARGETS), each run on the samples the previous targets left unbroken.
    ApgdT,
    /// Square, the black-box random search, on the negative margin.
    Square,
}

impl Method {
    /// The method's settings within an evaluation's: APGD takes `apgd_steps` iterations and
    /// Square `queries` queries where PGD and FGSM take the threat's steps.
    pub fn config(self, threat: &AttackConfig, apgd_steps: usize, queries: usize) -> AttackConfig {
        let steps = match self {
            Method::Pgd | Method::Fgsm => threat.steps,
            Method::ApgdCe | Method::ApgdDlr | Method::ApgdT => apgd_steps,
            Method::Square => queries,
        };
        AttackConfig { steps, ..*threat }
    }
}

/// Several methods run as a cascade, which come with the gradient-masking checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Suite {
    /// The per-sample worst case over PGD, PGD with random restarts, APGD-CE and APGD-DLR
    /// (strong_suite).
    Strong,
    /// AutoAttack's standard version: APGD-CE, APGD-T and Square (autoattack_suite; FAB-T left
    /// out, see the README).
    Autoattack,
}

/// What an evaluation asks for by name: one method, or a suite. Its names are the methods'
/// and the suites' own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttackChoice {
    Method(Method),
    Suite(Suite),
}

impl clap::ValueEnum for AttackChoice {
    fn value_variants<'a>() -> &'a [Self] {
        static ALL: std::sync::LazyLock<Vec<AttackChoice>> = std::sync::LazyLock::new(|| {
            let methods = Method::value_variants()
                .iter()
                .map(|&m| AttackChoice::Method(m));
            let suites = Suite::value_variants()
                .iter()
                .map(|&s| AttackChoice::Suite(s));
            methods.chain(suites).collect()
        });
        &ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        match self {
            AttackChoice::Method(method) => method.to_possible_value(),
            AttackChoice::Suite(suite) => suite.to_possible_value(),
        }
    }
}

/// An attack method with its settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifierAttack {
    pub method: Method,
    pub config: AttackConfig,
}

impl ClassifierAttack {
    /// A short label, e.g. `PGD-10`, `PGD-10 ×5 restarts`, `APGD-DLR-100`.
    pub fn label(&self) -> String {
        let c = &self.config;
        let restarts = if c.restarts > 1 {
            format!(" ×{} restarts", c.restarts)
        } else {
            String::new()
        };
        let start = if c.random_start && self.method == Method::Pgd {
            " (random start)"
        } else {
            ""
        };
        match self.method {
            Method::Pgd => format!("PGD-{}{restarts}{start}", c.steps),
            Method::Fgsm => "FGSM".to_string(),
            Method::ApgdCe => format!("APGD-CE-{}{restarts}", c.steps),
            Method::ApgdDlr => format!("APGD-DLR-{}{restarts}", c.steps),
            Method::ApgdT => format!("APGD-T-{}{restarts}", c.steps),
            Method::Square => format!("Square-{}{restarts}", c.steps),
        }
    }

    /// Adversarial examples for `(x, y)` against `model`, which is run in evaluation mode.
    pub fn perturb(&self, model: &dyn Classifier, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        let ce = |x: &Tensor| losses::cross_entropy(&model.forward_t(x, false), y);
        let dlr = |x: &Tensor| losses::dlr(&model.forward_t(x, false), y);
        match self.method {
            Method::Pgd => pgd(&ce, x, &self.config),
            Method::Fgsm => fgsm(&ce, x, &self.config),
            Method::ApgdCe => {
                let ce = fooled_first(model, y, |z: &Tensor| losses::cross_entropy(z, y));
                apgd(&ce, x, &self.config, Some(FOOLED_ABOVE))
            }
            // The DLR loss is positive exactly where the classifier is fooled.
            Method::ApgdDlr => apgd(&dlr, x, &self.config, Some(0.0)),
            Method::ApgdT => apgd_targeted(model, x, y, &self.config),
            Method::Square => {
                let margin = |logits: &Tensor| losses::negative_margin(logits, y);
                match model.window_search() {
                    Some(search) if x.dim() == 4 => square::search(
                        &mut Mapped {
                            search,
                            map: margin,
                        },
                        x,
                        &self.config,
                        Some(0.0),
                    ),
                    _ => {
                        let objective = |x: &Tensor| margin(&model.forward_t(x, false));
                        square(&objective, x, &self.config, Some(0.0))
                    }
                }
            }
        }
    }

    /// Adversarial examples for an evaluation, which reads only whether each one fools
    /// `model`. PGD counts a sample fooled once any of its iterates is (as AutoAttack returns
    /// the fooling iterate, not the one of highest loss, which may be classified correctly
    /// after an earlier iterate fooled the model) and stops attacking it there, so a
    /// non-robust model costs a step or two ([`pgd_until`]). Every other method is
    /// [`Self::perturb`]: APGD and Square already end on fooled samples, FGSM is one step.
    pub fn perturb_until_fooled(
        &self,
        model: &dyn Classifier,
        x: &Tensor,
        y: &Tensor,
    ) -> Result<Tensor> {
        if self.method != Method::Pgd {
            return self.perturb(model, x, y);
        }
        let ce = |x: &Tensor, rows: &Tensor| {
            let (logits, y) = (model.forward_t(x, false), y.index_select(0, rows));
            with_fooled_bonus(losses::cross_entropy(&logits, &y), &logits, &y)
        };
        pgd_until(&ce, x, &self.config, FOOLED_ABOVE)
    }
}

/// The objective `loss(logits)` plus [`FOOLED_BONUS`] where the classifier is fooled.
fn fooled_first<'a>(
    model: &'a dyn Classifier,
    y: &'a Tensor,
    loss: impl Fn(&Tensor) -> Tensor + 'a,
) -> impl Fn(&Tensor) -> Tensor + 'a {
    move |x: &Tensor| {
        let logits = model.forward_t(x, false);
        with_fooled_bonus(loss(&logits), &logits, y)
    }
}

/// `loss` of `logits` plus [`FOOLED_BONUS`] where they misclassify `y`.
fn with_fooled_bonus(loss: Tensor, logits: &Tensor, y: &Tensor) -> Tensor {
    let fooled = logits.argmax(-1, false).ne_tensor(y).to_kind(Kind::Float);
    loss + fooled * FOOLED_BONUS
}

/// APGD-T: for the k-th highest-scoring class at the clean point (k = 2, 3, …), APGD on the
/// targeted DLR loss toward it, on the samples no earlier target broke.
fn apgd_targeted(
    model: &dyn Classifier,
    x: &Tensor,
    y: &Tensor,
    config: &AttackConfig,
) -> Result<Tensor> {
    let clean = tch::no_grad(|| model.forward_t(x, false));
    let classes = clean.size()[1];
    if classes < 4 {
        return Err(Error::invalid(
            "attack",
            format!("APGD-T's targeted DLR loss needs at least 4 classes, the model has {classes}"),
        ));
    }
    let order = clean.argsort(-1, true);
    let mut adversarial = x.detach().copy();
    let mut held = clean.argmax(-1, false).eq_tensor(y);
    for k in 1..=APGD_T_TARGETS.min(classes - 1) {
        let alive = held.nonzero().squeeze_dim(1);
        if alive.size()[0] == 0 {
            break;
        }
        let (xa, ya) = (x.index_select(0, &alive), y.index_select(0, &alive));
        let targets = order.select(1, k).index_select(0, &alive);
        let objective = fooled_first(model, &ya, |z: &Tensor| {
            losses::targeted_dlr(z, &ya, &targets)
        });
        let x_adv = apgd(&objective, &xa, config, Some(FOOLED_ABOVE))?;
        let still = tch::no_grad(|| {
            model
                .forward_t(&x_adv, false)
                .argmax(-1, false)
                .eq_tensor(&ya)
        });
        adversarial = adversarial.index_copy(0, &alive, &x_adv);
        held = held.index_put(&[Some(alive)], &still, false);
    }
    Ok(adversarial)
}

/// AutoAttack's standard version (Croce & Hein 2020) as wcmi runs it: APGD-CE and APGD-T
/// (`apgd_steps` iterations, random start), then Square (`queries` queries), in this order as
/// a cascade, each with `base.restarts` runs. The standard settings are
/// [`AUTOATTACK_STEPS`], [`SQUARE_QUERIES`] and one run. FAB-T is not among them (see the
/// README's evaluation section).
pub fn autoattack_suite(
    base: &AttackConfig,
    apgd_steps: usize,
    queries: usize,
) -> Vec<ClassifierAttack> {
    let apgd = AttackConfig {
        steps: apgd_steps,
        random_start: true,
        ..*base
    };
    let square = AttackConfig {
        steps: queries,
        ..apgd
    };
    [
        (Method::ApgdCe, apgd),
        (Method::ApgdT, apgd),
        (Method::Square, square),
    ]
    .into_iter()
    .map(|(method, config)| ClassifierAttack { method, config })
    .collect()
}

/// The strong evaluation: the given PGD as is, PGD with random starts and `restarts` runs,
/// APGD-CE and APGD-DLR with `apgd_steps` iterations each. A sample counts as robust only if
/// it survives all of them.
pub fn strong_suite(
    base: &AttackConfig,
    restarts: usize,
    apgd_steps: usize,
) -> Vec<ClassifierAttack> {
    let apgd = AttackConfig {
        steps: apgd_steps,
        random_start: false,
        restarts: 1,
        ..*base
    };
    vec![
        ClassifierAttack {
            method: Method::Pgd,
            config: *base,
        },
        ClassifierAttack {
            method: Method::Pgd,
            config: AttackConfig {
                random_start: true,
                restarts,
                ..*base
            },
        },
        ClassifierAttack {
            method: Method::ApgdCe,
            config: apgd,
        },
        ClassifierAttack {
            method: Method::ApgdDlr,
            config: apgd,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attack::Norm;
    use crate::nn::folded::FoldedClassifier;
    use crate::nn::{EncoderClassifier, HeadKind, Window, WindowSearch};
    use clap::ValueEnum;
    use tch::nn::ModuleT;
    use tch::{Device, Kind};

    /// A folded classifier's window search that checks each answer against its plain forward.
    struct Checked<'a> {
        search: Box<dyn WindowSearch + 'a>,
        plain: &'a FoldedClassifier,
        queries: usize,
    }

    impl Checked<'_> {
        fn check(&self, logits: Tensor, x: &Tensor) -> Tensor {
            let plain = self.plain.forward_t(x, false);
            let gap = ((&logits - &plain).abs().max() / plain.abs().max()).double_value(&[]);
            assert!(gap < 1e-4, "query {}: logits off by {gap}", self.queries);
            logits
        }
    }

    impl WindowSearch for Checked<'_> {
        fn reset(&mut self, x: &Tensor) -> Tensor {
            let logits = self.search.reset(x);
            self.check(logits, x)
        }

        fn window(&mut self, candidate: &Tensor, window: &Window) -> Tensor {
            self.queries += 1;
            let logits = self.search.window(candidate, window);
            self.check(logits, candidate)
        }

        fn accept(&mut self, improved: &Tensor) {
            self.search.accept(improved);
        }
    }

    #[test]
    fn square_by_window_sees_the_plain_logits_at_every_query() {
        tch::manual_seed(7);
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let network = EncoderClassifier::new(&vs.root(), [1, 28, 28], HeadKind::Mlp, 10, false);
        let folded = FoldedClassifier::new(&network);
        let x = Tensor::rand([16, 1, 28, 28], (Kind::Float, Device::Cpu));
        let y = tch::no_grad(|| folded.forward_t(&x, false).argmax(-1, false));
        let config = AttackConfig::linf(0.3, 300, 0.1);
        let mut checked = Mapped {
            search: Checked {
                search: folded.window_search().expect("a folded classifier"),
                plain: &folded,
                queries: 0,
            },
            map: |logits: &Tensor| losses::negative_margin(logits, &y),
        };
        let adversarial = square::search(&mut checked, &x, &config, Some(0.0)).unwrap();
        // Libtorch's generator is shared with tests running beside this one, so the draws (and
        // whether some sample is fooled early) vary; every query that ran was checked.
        assert!(checked.search.queries > 0, "Square queried by window");
        let margin =
            |t: &Tensor| tch::no_grad(|| losses::negative_margin(&folded.forward_t(t, false), &y));
        let raised = margin(&adversarial)
            .gt_tensor(&margin(&x))
            .sum(Kind::Int64)
            .int64_value(&[]);
        assert!(
            raised >= 15,
            "the search raised {raised} of 16 samples' objective"
        );
        super::super::test_support::assert_in_threat(&adversarial, &x, Norm::Linf, 0.3);
    }

    #[test]
    fn pgd_until_fooled_breaks_what_pgd_breaks_on_fewer_rows() {
        use std::sync::atomic::{AtomicI64, Ordering};
        use std::sync::Arc;
        // Logits (t, −t), t = Σx − 2 over 4 pixels: class 0 above a mean of 0.5. A PGD step of
        // 0.025 moves t by 0.1 toward the other class, at most 0.4 within ε = 0.1.
        let rows = Arc::new(AtomicI64::new(0));
        let counter = Arc::clone(&rows);
        let model = tch::nn::func_t(move |x, _| {
            counter.fetch_add(x.size()[0], Ordering::Relaxed);
            let t = x
                .flatten(1, -1)
                .sum_dim_intlist([1i64].as_slice(), false, Kind::Float)
                - 2.0;
            Tensor::stack(&[t.shallow_clone(), -t], 1)
        });
        // |t| from 0.05 to 0.35 falls within 1 to 4 steps, 0.45 and 0.55 hold; both classes
        // interleaved, then two images labelled against their clean prediction.
        let mut images = Vec::new();
        let mut labels = Vec::new();
        for m in [0.05f32, 0.15, 0.25, 0.35, 0.45, 0.55] {
            for (class, sign) in [(0i64, 1.0f32), (1, -1.0)] {
                images.push(0.5 + sign * m / 4.0);
                labels.push(class);
            }
        }
        images.extend([0.55, 0.45]);
        labels.extend([1, 0]);
        let x = Tensor::from_slice(&images)
            .view([-1, 1, 1, 1])
            .expand([-1, 1, 2, 2], false)
            .contiguous();
        let y = Tensor::from_slice(&labels);
        let attack = ClassifierAttack {
            method: Method::Pgd,
            config: AttackConfig::linf(0.1, 10, 0.025),
        };
        let correct = |t: &Tensor| {
            Vec::<bool>::try_from(model.forward_t(t, false).argmax(-1, false).eq_tensor(&y))
                .unwrap()
        };
        let whole = correct(&attack.perturb(&model, &x, &y).unwrap());
        rows.store(0, Ordering::Relaxed);
        let until = attack.perturb_until_fooled(&model, &x, &y).unwrap();
        let evaluated = rows.load(Ordering::Relaxed);
        let robust: Vec<bool> = (0..14).map(|i| (8..12).contains(&i)).collect();
        assert_eq!(correct(&until), robust);
        assert_eq!(whole, robust);
        // Fooled after k steps: k + 1 evaluations; robust: all 11; clean mistakes: one, and
        // they come back unchanged.
        assert_eq!(evaluated, 2 * (2 + 3 + 4 + 5) + 4 * 11 + 2);
        assert!(until.narrow(0, 12, 2).equal(&x.narrow(0, 12, 2)));
    }

    #[test]
    fn an_attack_choice_is_named_as_its_method_or_suite_in_flags_and_json() {
        let names: Vec<String> = AttackChoice::value_variants()
            .iter()
            .map(|choice| {
                let flag = choice.to_possible_value().unwrap().get_name().to_string();
                let json = match choice {
                    AttackChoice::Method(m) => serde_json::to_value(m),
                    AttackChoice::Suite(s) => serde_json::to_value(s),
                }
                .unwrap();
                assert_eq!(json, flag.as_str());
                assert_eq!(AttackChoice::from_str(&flag, false), Ok(*choice));
                flag
            })
            .collect();
        assert_eq!(
            names,
            [
                "pgd",
                "fgsm",
                "apgd-ce",
                "apgd-dlr",
                "apgd-t",
                "square",
                "strong",
                "autoattack"
            ]
        );
    }

    #[test]
    fn each_method_takes_its_own_budget_from_the_evaluation() {
        let threat = AttackConfig::linf(0.3, 40, 0.01);
        assert_eq!(Method::Pgd.config(&threat, 100, 5000).steps, 40);
        assert_eq!(Method::ApgdT.config(&threat, 100, 5000).steps, 100);
        let square = Method::Square.config(&threat, 100, 5000);
        assert_eq!((square.steps, square.eps), (5000, 0.3));
    }
}
