//! Training classifiers (SPEC §4, §5): the supervised Baseline-H end to end, or a downstream
//! head on a frozen encoder; on clean inputs or on PGD examples (Madry et al.). Each epoch ends
//! with validation accuracy (and, with a validation attack, accuracy under it); the kept
//! checkpoint is the last epoch or the best one by the chosen score. Resumable per epoch.
use super::run::{keep_last_epoch, EpochEnd, Run, RunSettings, Timing, Trainer};
use crate::attack::classifier::{ClassifierAttack, Method};
use crate::attack::AttackConfig;
use crate::checkpoint::{self, CheckpointInfo};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::eval::accuracy::correct;
use crate::eval::robustness;
use crate::nn::classifier::EncoderClassifier;
use crate::nn::folded::FoldedClassifier;
use crate::nn::{Adam, AdamConfig};
use crate::nn::{HeadKind, ModelSpec};
use crate::seed::{self, Stream};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::nn::{ModuleT, VarStore};
use tch::{Device, Tensor};

/// Which epoch's weights a run keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Selection {
    /// The last epoch.
    Last,
    /// The best validation accuracy.
    BestNatural,
    /// The best validation accuracy under the validation attack ("E.S." in the paper, on a
    /// validation split rather than the test set).
    BestAdversarial,
}

/// How a classifier is trained and which epoch it keeps: the rows of the paper's tables
/// (SPEC §5), one name each in flags, configurations, folders and tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum Training {
    /// Clean inputs; the last epoch (an end-to-end model: the best validation accuracy).
    #[serde(rename = "standard")]
    Standard,
    /// Clean inputs; the epoch with the best validation accuracy under the paper's PGD ("E.S.").
    #[serde(rename = "standard-es", alias = "early-stop")]
    #[value(name = "standard-es")]
    EarlyStop,
    /// PGD inputs (Madry et al.); the epoch with the best validation accuracy under the
    /// paper's PGD.
    #[serde(rename = "adversarial")]
    Adversarial,
}

impl Training {
    pub fn name(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::EarlyStop => "standard-es",
            Self::Adversarial => "adversarial",
        }
    }

    /// The row label of the paper's tables.
    pub fn label(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::EarlyStop => "standard, E.S.",
            Self::Adversarial => "robust",
        }
    }
}

/// Settings of a classifier run; defaults are the paper's supervised Baseline-H (SPEC §5).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifierConfig {
    #[serde(flatten)]
    pub run: RunSettings,
    /// The head: MLP for Baseline-H.
    pub head: HeadKind,
    /// A frozen encoder checkpoint to train the head on; `None` trains end to end (Baseline-H).
    pub encoder: Option<PathBuf>,
    /// Adversarial training: train on PGD examples found with these settings.
    pub adversarial: Option<AttackConfig>,
    /// PGD under which validation accuracy is also measured each epoch.
    pub validation_attack: Option<AttackConfig>,
    pub selection: Selection,
}

impl Default for ClassifierConfig {
    fn default() -> Self {
        Self {
            run: RunSettings::default(),
            head: HeadKind::Mlp,
            encoder: None,
            adversarial: None,
            validation_attack: None,
            selection: Selection::BestNatural,
        }
    }
}

impl ClassifierConfig {
    /// A run of `training` with `head` on the frozen `encoder` (end to end without one): PGD
    /// examples from `training_attack` for adversarial training, and accuracy under
    /// `validation_attack` measured each epoch where it chooses the kept epoch.
    pub fn for_training(
        run: RunSettings,
        training: Training,
        head: HeadKind,
        encoder: Option<PathBuf>,
        validation_attack: AttackConfig,
        training_attack: AttackConfig,
    ) -> Self {
        let selection = match (training, encoder.is_some()) {
            (Training::Standard, true) => Selection::Last,
            (Training::Standard, false) => Selection::BestNatural,
            (Training::EarlyStop | Training::Adversarial, _) => Selection::BestAdversarial,
        };
        Self {
            run,
            head,
            encoder,
            adversarial: (training == Training::Adversarial).then_some(training_attack),
            validation_attack: (selection == Selection::BestAdversarial)
                .then_some(validation_attack),
            selection,
        }
    }

    pub fn validate(&self) -> Result<()> {
        self.run.validate()?;
        if self.selection == Selection::BestAdversarial && self.validation_attack.is_none() {
            return Err(Error::invalid(
                "selection",
                "choosing by adversarial accuracy needs a validation attack",
            ));
        }
        for attack in self.adversarial.iter().chain(&self.validation_attack) {
            attack.validate()?;
        }
        Ok(())
    }
}

/// One line of the per-epoch log.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_accuracy: f64,
    /// Validation accuracy under the validation attack, when there is one.
    pub val_adversarial_accuracy: Option<f64>,
    pub seconds: f64,
    pub images_per_second: f64,
}

#[derive(Debug, Serialize)]
pub struct Outcome {
    pub best_epoch: usize,
    /// The kept epoch's selection score (NaN when keeping the last epoch).
    pub best_score: f64,
    pub epochs_run: usize,
    pub checkpoint: PathBuf,
}

/// One optimisation step of a classifier on the cross-entropy of `(x, y)`, on PGD examples
/// when `attack` is given (Madry et al.; the attack runs the model in evaluation mode, its
/// batch norms folded into the current weights).
/// Returns the loss and the detached logits; a non-finite loss is an error and no update.
pub fn classifier_step(
    model: &EncoderClassifier,
    adam: &mut Adam,
    x: &Tensor,
    y: &Tensor,
    attack: Option<&ClassifierAttack>,
) -> Result<(f64, Tensor)> {
    let x = match attack {
        Some(attack) => attack.perturb(&FoldedClassifier::new(model), x, y)?,
        None => x.shallow_clone(),
    };
    let logits = model.forward_t(&x, true);
    let loss = logits.cross_entropy_for_logits(y);
    let value = loss.double_value(&[]);
    if !value.is_finite() {
        return Err(Error::Diverged(format!("loss is {value}")));
    }
    adam.backward_step(&loss);
    Ok((value, logits.detach()))
}

fn pgd(config: AttackConfig) -> ClassifierAttack {
    ClassifierAttack {
        method: Method::Pgd,
        config,
    }
}

/// Builds the model: Baseline-H, or a head on the frozen encoder of `config.encoder` (any
/// checkpoint with an encoder), whose weights are loaded and excluded from training.
fn build(
    data: &Dataset,
    config: &ClassifierConfig,
    vs: &VarStore,
) -> Result<(ModelSpec, crate::nn::Network)> {
    let (image_shape, num_classes) = (data.train.image_shape(), data.num_classes());
    let Some(encoder_path) = &config.encoder else {
        let spec = ModelSpec::BaselineH {
            image_shape,
            head: config.head,
            num_classes,
        };
        let network = spec.build(vs);
        return Ok((spec, network));
    };
    let spec = ModelSpec::EncoderHead {
        image_shape,
        head: config.head,
        num_classes,
    };
    let network = spec.build(vs);
    let (saved, tensors) = checkpoint::read(encoder_path)?;
    if saved.model.image_shape() != image_shape {
        return Err(Error::checkpoint(
            encoder_path,
            format!(
                "its encoder takes {:?} images, {} has {:?}",
                saved.model.image_shape(),
                data.source,
                image_shape
            ),
        ));
    }
    checkpoint::load_into(vs, "encoder.", &tensors, "", encoder_path)?;
    Ok((spec, network))
}

/// The classifier's side of the epoch driver: its step on clean or PGD inputs, the epoch's
/// loss and accuracy, and validation accuracy (under the validation attack, when there is one).
struct ClassifierTrainer<'a> {
    model: &'a EncoderClassifier,
    attack: Option<ClassifierAttack>,
    validation_attacks: Vec<ClassifierAttack>,
    data: &'a Dataset,
    validation: &'a [i64],
    selection: Selection,
    loss_sum: f64,
    hits: i64,
    seen: i64,
}

impl Trainer for ClassifierTrainer<'_> {
    type Record = EpochRecord;
    const DROP_LAST: bool = false;

    fn step(&mut self, adam: &mut Adam, x: &Tensor, y: &Tensor) -> Result<()> {
        let (loss, logits) = classifier_step(self.model, adam, x, y, self.attack.as_ref())?;
        let n = y.size()[0];
        self.loss_sum += loss * n as f64;
        self.hits += correct(&logits, y);
        self.seen += n;
        Ok(())
    }

    fn running(&self) -> String {
        format!(
            "loss {:.4} acc {:.2}%",
            self.loss_sum / self.seen as f64,
            100.0 * self.hits as f64 / self.seen as f64
        )
    }

    fn end_epoch(&mut self, epoch: usize, timing: Timing) -> Result<EpochEnd<EpochRecord>> {
        let train_accuracy = self.hits as f64 / self.seen as f64;
        let (val_accuracy, val_adversarial_accuracy) = if self.validation.is_empty() {
            (train_accuracy, None)
        } else {
            let report = robustness::evaluate(
                &FoldedClassifier::new(self.model),
                &self.data.train,
                Some(self.validation),
                512,
                &self.validation_attacks,
            )?;
            (
                report.natural_accuracy,
                (!self.validation_attacks.is_empty()).then_some(report.worst_case_accuracy),
            )
        };
        let record = EpochRecord {
            epoch,
            train_loss: self.loss_sum / self.seen as f64,
            train_accuracy,
            val_accuracy,
            val_adversarial_accuracy,
            seconds: timing.seconds,
            images_per_second: timing.images_per_second,
        };
        (self.loss_sum, self.hits, self.seen) = (0.0, 0, 0);
        let adversarial = val_adversarial_accuracy.map_or(String::new(), |a| {
            format!(" ({:.2}% under attack)", 100.0 * a)
        });
        let summary = format!(
            "loss {:.4}, train accuracy {:.2}%, validation accuracy {:.2}%{adversarial}",
            record.train_loss,
            100.0 * record.train_accuracy,
            100.0 * record.val_accuracy,
        );
        let score = match self.selection {
            Selection::Last => None,
            Selection::BestNatural => Some(val_accuracy),
            Selection::BestAdversarial => val_adversarial_accuracy,
        };
        Ok(EpochEnd {
            record,
            summary,
            score,
        })
    }
}

/// Trains a classifier on `data`, writing checkpoints and the log under `out_dir`.
/// With `resume`, continues from `out_dir/resume.safetensors` when it exists.
pub fn train(
    data: &Dataset,
    config: &ClassifierConfig,
    out_dir: &Path,
    resume: bool,
    device: Device,
) -> Result<Outcome> {
    config.validate()?;
    let parts = config.run.split(data)?;
    if parts.validation.is_empty() && config.selection != Selection::Last {
        return Err(Error::invalid(
            "val_fraction",
            format!(
                "{} holds out no validation images, but the kept epoch is chosen on them (never \
                 on training or test images); give a larger fraction",
                config.run.val_fraction
            ),
        ));
    }

    seed::seed_torch(config.run.seed, Stream::Init, 0);
    let vs = VarStore::new(device);
    let (spec, network) = build(data, config, &vs)?;
    let mut adam = Adam::new(&vs, AdamConfig::with_lr(config.run.lr))?;
    let template =
        CheckpointInfo::for_run(spec.clone(), data.source.named(), config.run.seed, config)?;
    let mut run = Run::start(out_dir, template, config.run.epochs, &vs, &mut adam, resume)?;
    let mut trainer = ClassifierTrainer {
        model: network.classifier()?,
        attack: config.adversarial.map(pgd),
        validation_attacks: config.validation_attack.map(pgd).into_iter().collect(),
        data,
        validation: &parts.validation,
        selection: config.selection,
        loss_sum: 0.0,
        hits: 0,
        seen: 0,
    };
    let epochs_run = run.drive(
        &mut trainer,
        data,
        &config.run,
        &parts.train,
        &vs,
        &mut adam,
    )?;
    Ok(Outcome {
        best_epoch: run.progress.best_epoch,
        best_score: run.progress.best_score,
        epochs_run,
        checkpoint: run.files.best,
    })
}

/// The run of `config`, which keeps its last epoch, taken from the finished run of `trained` in
/// `trained_dir` instead of trained again: the two train alike and differ only in which epoch
/// they keep and what they validate (validation changes no weight), so the standard head is
/// the E.S. head's last epoch (issue 16).
pub fn keep_last_of(
    config: &ClassifierConfig,
    trained: &ClassifierConfig,
    trained_dir: &Path,
    out_dir: &Path,
) -> Result<Outcome> {
    let alike = |c: &ClassifierConfig| ClassifierConfig {
        validation_attack: None,
        selection: Selection::Last,
        ..c.clone()
    };
    if config.selection != Selection::Last || alike(trained) != *config {
        return Err(Error::invalid(
            "selection",
            format!(
                "the run in {} trains differently or the wanted run does not keep its last \
                 epoch; train it instead",
                trained_dir.display()
            ),
        ));
    }
    let epochs = config.run.epochs;
    let checkpoint = keep_last_epoch(trained_dir, epochs, out_dir, config)?;
    Ok(Outcome {
        best_epoch: epochs,
        best_score: f64::NAN,
        epochs_run: 0,
        checkpoint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn a_training_has_one_name_in_flags_json_and_folders() {
        for training in Training::value_variants() {
            assert_eq!(serde_json::to_value(training).unwrap(), training.name());
            assert_eq!(
                training.to_possible_value().unwrap().get_name(),
                training.name()
            );
        }
        // Results written before the name was shared still read.
        let old: Training = serde_json::from_str("\"early-stop\"").unwrap();
        assert_eq!(old, Training::EarlyStop);
    }

    #[test]
    fn run_settings_keep_the_configuration_json_flat() {
        // A configuration as checkpoints written before `RunSettings` existed store it.
        let stored = r#"{"epochs": 10, "batch_size": 128, "lr": 0.001, "val_fraction": 0.1,
            "split_seed": 0, "train_limit": 20000, "seed": 3, "head": "mlp", "encoder": null,
            "adversarial": null, "validation_attack": null, "selection": "last"}"#;
        let config: ClassifierConfig = serde_json::from_str(stored).unwrap();
        let expected = RunSettings {
            epochs: 10,
            lr: 1e-3,
            train_limit: Some(20000),
            seed: 3,
            ..RunSettings::default()
        };
        assert_eq!(config.run, expected);
        let value: serde_json::Value = serde_json::from_str(stored).unwrap();
        assert_eq!(serde_json::to_value(&config).unwrap(), value);
    }
}
