//! Supervised training of Baseline-H (SPEC §3, §5): Adam on the cross-entropy, the checkpoint
//! that is best on the validation split kept, resumable at every epoch boundary.
use super::adam::{Adam, AdamConfig};
use crate::attack::classifier::{ClassifierAttack, Method};
use crate::attack::AttackConfig;
use crate::checkpoint::{self, CheckpointInfo};
use crate::data::{augment, batches::epoch_batches, split, Dataset};
use crate::error::{ensure_positive, Error, Result};
use crate::eval::accuracy::correct;
use crate::eval::robustness;
use crate::nn::ModelSpec;
use crate::report::{jsonl, progress};
use crate::seed::{self, Stream};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::nn::ModuleT;
use tch::nn::VarStore;
use tch::{Device, Tensor};

/// Settings of a supervised run; defaults are the paper's (SPEC §5).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SupervisedConfig {
    /// Epochs to train (the paper: 300).
    pub epochs: usize,
    /// Mini-batch size (128).
    pub batch_size: usize,
    /// Adam learning rate (1e-4).
    pub lr: f64,
    /// Fraction of the training set held out for model selection (0.1).
    pub val_fraction: f64,
    /// Seed of the validation split, shared by every run on a dataset so that their
    /// validation numbers compare (0).
    pub split_seed: u64,
    /// Train on the first N training examples only (all when `None`).
    pub train_limit: Option<usize>,
    /// Seed of initialisation, shuffling, augmentation and dropout.
    pub seed: u64,
    /// Adversarial training (Madry et al.): train on PGD examples found with these settings,
    /// and choose the epoch by validation accuracy under the same PGD.
    pub adversarial: Option<AttackConfig>,
}

impl Default for SupervisedConfig {
    fn default() -> Self {
        Self {
            epochs: 300,
            batch_size: 128,
            lr: 1e-4,
            val_fraction: 0.1,
            split_seed: 0,
            train_limit: None,
            seed: 0,
            adversarial: None,
        }
    }
}

impl SupervisedConfig {
    pub fn validate(&self) -> Result<()> {
        ensure_positive("--epochs", self.epochs as i64)?;
        ensure_positive("--batch-size", self.batch_size as i64)?;
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(Error::invalid(
                "--lr",
                format!("must be a positive number, got {}", self.lr),
            ));
        }
        if let Some(limit) = self.train_limit {
            ensure_positive("--train-limit", limit as i64)?;
        }
        match &self.adversarial {
            Some(attack) => attack.validate(),
            None => Ok(()),
        }
    }
}

/// One line of the per-epoch log.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_accuracy: f64,
    /// Validation accuracy under the training PGD (adversarial training only).
    pub val_adversarial_accuracy: Option<f64>,
    pub seconds: f64,
    pub images_per_second: f64,
}

/// Files of a run directory.
pub struct RunFiles {
    /// The weights best on the validation split (for evaluation).
    pub best: PathBuf,
    /// Everything needed to resume: weights, optimizer state, epoch.
    pub resume: PathBuf,
    pub log: PathBuf,
}

impl RunFiles {
    pub fn new(out_dir: &Path) -> Self {
        Self {
            best: out_dir.join("model.safetensors"),
            resume: out_dir.join("resume.safetensors"),
            log: out_dir.join("log.jsonl"),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Outcome {
    pub best_epoch: usize,
    /// The selection criterion's best value: validation accuracy, under attack when training
    /// adversarially.
    pub best_val_accuracy: f64,
    pub epochs_run: usize,
    pub checkpoint: PathBuf,
}

const MODEL_PREFIX: &str = "model.";
const OPTIMIZER_PREFIX: &str = "optimizer.";

fn info(
    spec: &ModelSpec,
    data: &Dataset,
    config: &SupervisedConfig,
    epoch: usize,
    metrics: serde_json::Value,
) -> CheckpointInfo {
    CheckpointInfo {
        epoch,
        config: serde_json::to_value(config).unwrap_or_default(),
        metrics,
        ..CheckpointInfo::new(spec.clone(), Some(data.name), config.seed)
    }
}

/// Checks that a resumed run continues the same experiment: everything but the epoch count
/// must match.
fn check_resumable(
    path: &Path,
    saved: &CheckpointInfo,
    spec: &ModelSpec,
    config: &SupervisedConfig,
) -> Result<()> {
    let saved_config: SupervisedConfig = serde_json::from_value(saved.config.clone())
        .map_err(|e| Error::checkpoint(path, format!("unreadable run configuration: {e}")))?;
    let same = SupervisedConfig {
        epochs: config.epochs,
        ..saved_config.clone()
    };
    if &saved.model != spec || &same != config {
        return Err(Error::checkpoint(
            path,
            format!(
                "was written by a different run ({saved_config:?}); --resume needs the same \
                 settings, or choose another --out"
            ),
        ));
    }
    Ok(())
}

/// One optimisation step of a classifier on the cross-entropy of `(x, y)`, on PGD examples
/// when `attack` is given (Madry et al.; the attack runs the model in evaluation mode).
/// Returns the loss and the detached logits; a non-finite loss is an error and no update.
pub fn classifier_step(
    model: &dyn ModuleT,
    adam: &mut Adam,
    x: &Tensor,
    y: &Tensor,
    attack: Option<&ClassifierAttack>,
) -> Result<(f64, Tensor)> {
    let x = match attack {
        Some(attack) => attack.perturb(model, x, y)?,
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

/// Trains Baseline-H on `data`, writing checkpoints and the log under `out_dir`.
/// With `resume`, continues from `out_dir/resume.safetensors` when it exists.
pub fn train(
    data: &Dataset,
    config: &SupervisedConfig,
    out_dir: &Path,
    resume: bool,
    device: Device,
) -> Result<Outcome> {
    config.validate()?;
    let files = RunFiles::new(out_dir);
    let n_train = config
        .train_limit
        .map_or(data.train.len(), |l| (l as i64).min(data.train.len()));
    let parts = split::train_validation(n_train, config.val_fraction, config.split_seed)?;
    let spec = ModelSpec::BaselineH {
        image_shape: data.train.image_shape(),
        num_classes: data.name.num_classes(),
    };

    seed::seed_torch(config.seed, Stream::Init, 0);
    let vs = VarStore::new(device);
    let model = spec.build(&vs.root());
    let mut adam = Adam::new(&vs, AdamConfig::with_lr(config.lr))?;
    let (mut start, mut best_epoch, mut best_val) = (0, 0, f64::NEG_INFINITY);

    if resume && files.resume.is_file() {
        let (saved, tensors) = checkpoint::read(&files.resume)?;
        check_resumable(&files.resume, &saved, &spec, config)?;
        checkpoint::load_into(&vs, &tensors, MODEL_PREFIX, &files.resume)?;
        adam.load_state(&tensors, OPTIMIZER_PREFIX)?;
        start = saved.epoch;
        best_epoch = saved.metrics["best_epoch"].as_u64().unwrap_or(0) as usize;
        best_val = saved.metrics["best_val_accuracy"]
            .as_f64()
            .unwrap_or(f64::NEG_INFINITY);
        jsonl::truncate_after(&files.log, start)?;
        eprintln!(
            "resuming from {} after epoch {start}",
            files.resume.display()
        );
    } else {
        std::fs::create_dir_all(out_dir)
            .map_err(|e| Error::io(format!("cannot create {}", out_dir.display()), e))?;
        let _ = std::fs::remove_file(&files.log);
    }

    let attack = config.adversarial.map(|config| ClassifierAttack {
        method: Method::Pgd,
        config,
    });
    for epoch in start..config.epochs {
        seed::seed_torch(config.seed, Stream::Torch, epoch as u64);
        let mut augment_rng = seed::rng(config.seed, Stream::Augment, epoch as u64);
        let batches = epoch_batches(
            &parts.train,
            config.batch_size,
            Some((config.seed, epoch as u64)),
            false,
        );
        let bar = progress::bar(
            batches.len(),
            format!("epoch {}/{}", epoch + 1, config.epochs),
        );
        let started = Instant::now();
        let (mut loss_sum, mut hits, mut seen) = (0.0, 0i64, 0i64);
        for (step, index) in batches.iter().enumerate() {
            let (mut x, y) = data.train.batch(index);
            if data.name.augments() {
                x = augment::random_crop_flip(&x, &mut augment_rng);
            }
            let (loss_value, logits) = classifier_step(&model, &mut adam, &x, &y, attack.as_ref())
                .map_err(|e| match e {
                    Error::Diverged(m) => Error::Diverged(format!(
                        "{m} at epoch {} step {step}; try a lower --lr",
                        epoch + 1
                    )),
                    other => other,
                })?;
            let n = y.size()[0];
            loss_sum += loss_value * n as f64;
            hits += correct(&logits, &y);
            seen += n;
            bar.inc(1);
            bar.set_message(format!(
                "loss {:.4} acc {:.2}% {:.0} img/s",
                loss_sum / seen as f64,
                100.0 * hits as f64 / seen as f64,
                seen as f64 / started.elapsed().as_secs_f64()
            ));
        }
        bar.finish_and_clear();
        let seconds = started.elapsed().as_secs_f64();
        let train_accuracy = hits as f64 / seen as f64;
        let (val_accuracy, val_adversarial_accuracy) = if parts.validation.is_empty() {
            (train_accuracy, None)
        } else {
            let attacks: Vec<_> = attack.into_iter().collect();
            let report =
                robustness::evaluate(&model, &data.train, Some(&parts.validation), 512, &attacks)?;
            (
                report.natural_accuracy,
                attack.map(|_| report.worst_case_accuracy),
            )
        };
        let record = EpochRecord {
            epoch: epoch + 1,
            train_loss: loss_sum / seen as f64,
            train_accuracy,
            val_accuracy,
            val_adversarial_accuracy,
            seconds,
            images_per_second: seen as f64 / seconds,
        };
        let adversarial = val_adversarial_accuracy.map_or(String::new(), |a| {
            format!(" ({:.2}% under attack)", 100.0 * a)
        });
        eprintln!(
            "epoch {}/{}: loss {:.4}, train accuracy {:.2}%, validation accuracy {:.2}%{adversarial}, {:.0} images/s",
            record.epoch, config.epochs, record.train_loss, 100.0 * record.train_accuracy,
            100.0 * record.val_accuracy, record.images_per_second
        );
        jsonl::append(&files.log, &record)?;
        let selection = val_adversarial_accuracy.unwrap_or(val_accuracy);
        if selection > best_val {
            best_val = selection;
            best_epoch = epoch + 1;
            let metrics = serde_json::json!({
                "val_accuracy": val_accuracy,
                "val_adversarial_accuracy": val_adversarial_accuracy,
                "train_accuracy": record.train_accuracy,
            });
            checkpoint::save_model(
                &files.best,
                &vs,
                &info(&spec, data, config, epoch + 1, metrics),
            )?;
        }
        let state: Vec<_> = checkpoint::named_variables(&vs)
            .into_iter()
            .map(|(n, t)| (format!("{MODEL_PREFIX}{n}"), t))
            .chain(
                adam.state()
                    .into_iter()
                    .map(|(n, t)| (format!("{OPTIMIZER_PREFIX}{n}"), t)),
            )
            .collect();
        let metrics =
            serde_json::json!({ "best_epoch": best_epoch, "best_val_accuracy": best_val });
        checkpoint::save(
            &files.resume,
            &state,
            &info(&spec, data, config, epoch + 1, metrics),
        )?;
    }
    Ok(Outcome {
        best_epoch,
        best_val_accuracy: best_val,
        epochs_run: config.epochs - start,
        checkpoint: files.best,
    })
}
