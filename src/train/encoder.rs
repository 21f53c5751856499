//! Learning an encoder without labels (SPEC §4): Deep InfoMax maximises Î(x; g(x)) over the
//! encoder g and critic θ together (β = 0, the baseline "Hjelm et al."); worst-case MI
//! maximisation (β = 1, the paper's method) first moves each batch by PGD against the current
//! (g, θ) to the x' that lowers Î, then steps g and θ together to raise Î(x'; g(x')).
use super::preset::PresetSettings;
use super::run::{EpochEnd, Run, RunSettings, Timing, Trainer};
use crate::attack::AttackConfig;
use crate::checkpoint::CheckpointInfo;
use crate::data::{batches::epoch_batches, Dataset};
use crate::error::{ensure_positive, Error, Result};
use crate::mi::bounds::{ensure_negatives, estimate};
use crate::mi::critic_training::mean_ci95;
use crate::mi::worst_case::{worst_case_inputs, AttackGradient};
use crate::mi::Bound;
use crate::nn::critic::{CriticKind, SeparableCritic};
use crate::nn::folded::FoldedEncoder;
use crate::nn::{Adam, AdamConfig};
use crate::nn::{Encoder, ModelSpec, Network};
use crate::seed::{self, Stream};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::nn::{ModuleT, VarStore};
use tch::{Device, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum EncoderObjective {
    /// Standard MI maximisation (Deep InfoMax).
    Dim,
    /// Worst-case MI maximisation (the paper's method).
    WorstCase,
}

/// Settings of an encoder run; defaults are the paper's (SPEC §5).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EncoderConfig {
    pub objective: EncoderObjective,
    /// The MI bound maximised (the paper: DV).
    pub bound: Bound,
    /// Critic width H (the paper: 2048).
    pub critic_width: i64,
    /// The critic whose Î is maximised (the paper: local; absent in older configs).
    #[serde(default)]
    pub critic: CriticKind,
    /// The cosine critic's temperature τ (scores in [−1/τ, 1/τ]), when not
    /// [`crate::nn::critic::COSINE_TEMPERATURE`]: a lever on how hard the objective's scores
    /// may saturate (issue 13).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critic_temperature: Option<f64>,
    #[serde(flatten)]
    pub run: RunSettings,
    /// The threat: the PGD of the worst-case objective, and of the validation worst-case MI.
    pub attack: AttackConfig,
    pub attack_gradient: AttackGradient,
    /// Validation batches on which normal and worst-case Î are measured after each epoch.
    pub val_batches: usize,
}

impl EncoderConfig {
    pub fn validate(&self) -> Result<()> {
        self.run.validate()?;
        ensure_positive("critic_width", self.critic_width)?;
        if let Some(t) = self.critic_temperature {
            if !(t.is_finite() && t > 0.0) {
                return Err(Error::invalid(
                    "critic_temperature",
                    format!("must be a positive number, got {t}"),
                ));
            }
            if self.critic != CriticKind::GlobalCosine {
                return Err(Error::invalid(
                    "critic_temperature",
                    "only the global-cosine critic has a temperature (--critic global-cosine)",
                ));
            }
        }
        ensure_negatives(self.run.batch_size as i64)?;
        self.attack.validate()
    }

    /// A run of `objective` with a preset's settings, the training threat `attack` and `seed`;
    /// the rest as SPEC §5 (batch 128) with the paper code's attack gradient.
    pub fn from_preset(
        objective: EncoderObjective,
        preset: &PresetSettings,
        attack: AttackConfig,
        seed: u64,
    ) -> Self {
        EncoderConfig {
            objective,
            bound: preset.encoder_bound,
            critic_width: preset.critic_width,
            critic: preset.encoder_critic,
            critic_temperature: None,
            run: RunSettings {
                epochs: preset.encoder_epochs,
                lr: preset.lr,
                train_limit: preset.train_limit,
                seed,
                precision: preset.precision,
                ..RunSettings::default()
            },
            attack,
            attack_gradient: AttackGradient::Representation,
            val_batches: 5,
        }
    }

    /// The encoder and critic this run trains, for images of `image_shape`.
    pub fn model_spec(&self, image_shape: [i64; 3]) -> ModelSpec {
        ModelSpec::EncoderCritic {
            image_shape,
            critic_width: self.critic_width,
            critic: self.critic,
            critic_temperature: self.critic_temperature,
        }
    }
}

/// One line of the per-epoch log.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EncoderEpoch {
    pub epoch: usize,
    /// Mean Î over the epoch's training batches (at PGD inputs for the worst-case objective).
    pub train_mi: f64,
    /// Normal and worst-case Î on the validation batches (`None` without validation batches;
    /// the interval needs two).
    pub val_mi: Option<f64>,
    pub val_worst_case_mi: Option<f64>,
    pub val_worst_case_mi_ci95: Option<f64>,
    pub seconds: f64,
    pub images_per_second: f64,
}

#[derive(Debug, Serialize)]
pub struct EncoderOutcome {
    pub epochs_run: usize,
    pub checkpoint: PathBuf,
}

/// Normal and worst-case Î on validation batches, with the networks in evaluation mode:
/// (normal, worst case, 95 % half-width of the worst case), each `None` when not computable.
fn validation_mi(
    encoder: &Encoder,
    critic: &dyn SeparableCritic,
    data: &Dataset,
    batches: &[Tensor],
    config: &EncoderConfig,
) -> Result<(Option<f64>, Option<f64>, Option<f64>)> {
    let folded = FoldedEncoder::new(encoder);
    let representation = |x: &Tensor| folded.forward(x);
    let mi = |x: &Tensor| {
        tch::no_grad(|| estimate(config.bound, &critic.scores(x, &representation(x), false)))
            .double_value(&[])
    };
    let (mut normal, mut worst) = (Vec::new(), Vec::new());
    for index in batches {
        let (x, _) = data.train.batch(index);
        normal.push(mi(&x));
        let x_adv = worst_case_inputs(
            critic,
            &representation,
            &x,
            config.bound,
            &config.attack,
            config.attack_gradient,
        )?;
        worst.push(mi(&x_adv));
    }
    if batches.is_empty() {
        return Ok((None, None, None));
    }
    let (worst_mean, worst_ci) = mean_ci95(&worst);
    Ok((
        Some(mean_ci95(&normal).0),
        Some(worst_mean),
        worst_ci.is_finite().then_some(worst_ci),
    ))
}

/// One step of the objective on batch `x`: for the worst case, PGD against the current encoder
/// and critic (both in evaluation mode) first; then encoder and critic step together to raise
/// Î. Returns Î; a non-finite Î is an error and no update.
pub fn encoder_step(
    encoder: &Encoder,
    critic: &dyn SeparableCritic,
    adam: &mut Adam,
    x: &Tensor,
    config: &EncoderConfig,
) -> Result<f64> {
    let x = match config.objective {
        EncoderObjective::Dim => x.shallow_clone(),
        EncoderObjective::WorstCase => {
            let folded = FoldedEncoder::new(encoder);
            let representation = |x: &Tensor| folded.forward(x);
            worst_case_inputs(
                critic,
                &representation,
                x,
                config.bound,
                &config.attack,
                config.attack_gradient,
            )?
        }
    };
    let mi = estimate(
        config.bound,
        &critic.scores(&x, &encoder.forward_t(&x, true), true),
    );
    let value = mi.double_value(&[]);
    if !value.is_finite() {
        return Err(Error::Diverged(format!("MI estimate is {value}")));
    }
    adam.backward_step(&(-mi));
    Ok(value)
}

/// The encoder's side of the epoch driver: its step, the epoch's mean Î, and normal and
/// worst-case Î on the validation batches. It keeps every epoch's weights (the last).
struct EncoderTrainer<'a> {
    encoder: &'a Encoder,
    critic: &'a dyn SeparableCritic,
    config: &'a EncoderConfig,
    data: &'a Dataset,
    val_batches: &'a [Tensor],
    mi_sum: f64,
    steps: usize,
}

impl Trainer for EncoderTrainer<'_> {
    type Record = EncoderEpoch;
    const DROP_LAST: bool = true;

    fn step(&mut self, adam: &mut Adam, x: &Tensor, _labels: &Tensor) -> Result<()> {
        self.mi_sum += encoder_step(self.encoder, self.critic, adam, x, self.config)?;
        self.steps += 1;
        Ok(())
    }

    fn running(&self) -> String {
        format!("Î {:.3}", self.mi_sum / self.steps as f64)
    }

    fn end_epoch(&mut self, epoch: usize, timing: Timing) -> Result<EpochEnd<EncoderEpoch>> {
        let (val_mi, val_worst, val_worst_ci) = validation_mi(
            self.encoder,
            self.critic,
            self.data,
            self.val_batches,
            self.config,
        )?;
        let record = EncoderEpoch {
            epoch,
            train_mi: self.mi_sum / self.steps.max(1) as f64,
            val_mi,
            val_worst_case_mi: val_worst,
            val_worst_case_mi_ci95: val_worst_ci,
            seconds: timing.seconds,
            images_per_second: timing.images_per_second,
        };
        (self.mi_sum, self.steps) = (0.0, 0);
        let show = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.4}"));
        let summary = format!(
            "training Î {:.4}, validation Î {}, worst-case Î {} ± {}",
            record.train_mi,
            show(record.val_mi),
            show(record.val_worst_case_mi),
            show(record.val_worst_case_mi_ci95),
        );
        Ok(EpochEnd {
            record,
            summary,
            score: None,
        })
    }
}

/// Trains an encoder and its critic on `data` (labels unused), writing under `out_dir`.
pub fn train(
    data: &Dataset,
    config: &EncoderConfig,
    out_dir: &Path,
    resume: bool,
    device: Device,
) -> Result<EncoderOutcome> {
    config.validate()?;
    let parts = config.run.split(data)?;
    // Validation Î is estimated on whole batches; a validation split smaller than one batch
    // is used as a single smaller batch (InfoNCE is then capped at the log of its size).
    let val_batch_size = config.run.batch_size.min(parts.validation.len());
    if config.val_batches > 0 && val_batch_size < 2 {
        return Err(Error::invalid(
            "train_limit",
            format!(
                "the validation split holds {} image(s); MI needs batches of at least 2, so \
                 train on more images",
                parts.validation.len()
            ),
        ));
    }
    let val_batches: Vec<Tensor> = epoch_batches(&parts.validation, val_batch_size, None, true)
        .into_iter()
        .take(config.val_batches)
        .collect();
    let spec = config.model_spec(data.train.image_shape());
    seed::seed_torch(config.run.seed, Stream::Init, 0);
    let vs = VarStore::new(device);
    let Network::EncoderCritic { encoder, critic } = spec.build(&vs) else {
        unreachable!("an encoder-critic spec builds an encoder and a critic")
    };
    let mut adam = Adam::new(&vs, AdamConfig::with_lr(config.run.lr))?;
    let template =
        CheckpointInfo::for_run(spec.clone(), data.source.named(), config.run.seed, config)?;
    let mut run = Run::start(out_dir, template, config.run.epochs, &vs, &mut adam, resume)?;
    let mut trainer = EncoderTrainer {
        encoder: &encoder,
        critic: critic.as_ref(),
        config,
        data,
        val_batches: &val_batches,
        mi_sum: 0.0,
        steps: 0,
    };
    let epochs_run = run.drive(
        &mut trainer,
        data,
        &config.run,
        &parts.train,
        &vs,
        &mut adam,
    )?;
    Ok(EncoderOutcome {
        epochs_run,
        checkpoint: run.files.best,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::preset::Preset;
    use tch::Kind;

    /// The quick preset's worst-case encoder (global-cosine critic) with `temperature`.
    fn cosine(temperature: Option<f64>) -> EncoderConfig {
        let attack = AttackConfig::linf(0.3, 2, 0.15);
        let preset = Preset::Quick.settings();
        EncoderConfig {
            critic_temperature: temperature,
            ..EncoderConfig::from_preset(EncoderObjective::WorstCase, &preset, attack, 0)
        }
    }

    /// The scores of a critic built from `config` with the weights of `weights` (the same
    /// networks, whatever other tests do to libtorch's global generator).
    fn scores(config: &EncoderConfig, weights: &VarStore, x: &Tensor) -> Tensor {
        let mut vs = VarStore::new(Device::Cpu);
        let Network::EncoderCritic { encoder, critic } = config.model_spec([1, 28, 28]).build(&vs)
        else {
            unreachable!("an encoder-critic spec builds an encoder and a critic")
        };
        vs.copy(weights).unwrap();
        critic.scores(x, &encoder.forward_t(x, false), false)
    }

    #[test]
    fn the_objectives_scores_are_cosines_over_the_critic_temperature() {
        let weights = VarStore::new(Device::Cpu);
        cosine(None).model_spec([1, 28, 28]).build(&weights);
        let x = Tensor::rand([6, 1, 28, 28], (Kind::Float, Device::Cpu));
        let default = scores(&cosine(None), &weights, &x) * crate::nn::critic::COSINE_TEMPERATURE;
        let warmer = scores(&cosine(Some(0.5)), &weights, &x) * 0.5;
        assert!(default.abs().max().double_value(&[]) <= 1.0 + 1e-5);
        assert!(default.allclose(&warmer, 1e-5, 1e-6, false));
        assert!(
            default.std(false).double_value(&[]) > 1e-3,
            "scores that vary"
        );
    }

    #[test]
    fn a_critic_temperature_needs_the_cosine_critic_and_a_positive_value() {
        cosine(Some(0.5)).validate().unwrap();
        let settings = serde_json::to_value(cosine(None)).unwrap();
        assert!(
            settings.get("critic_temperature").is_none(),
            "the settings of earlier runs, which resume compares, are unchanged"
        );
        for t in [0.0, -1.0, f64::NAN] {
            let err = cosine(Some(t)).validate().unwrap_err().to_string();
            assert!(
                err.starts_with("critic_temperature: must be a positive number"),
                "{err}"
            );
        }
        let local = EncoderConfig {
            critic: CriticKind::Local,
            ..cosine(Some(0.5))
        };
        let err = local.validate().unwrap_err().to_string();
        assert!(err.contains("only the global-cosine critic"), "{err}");
    }
}
