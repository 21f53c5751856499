//! The paper's §6.1 for models trained anywhere: several classifiers (wcmi checkpoints or
//! TorchScript files) on one dataset, each evaluated under the paper's PGD and a suite
//! (AutoAttack's standard version unless told otherwise) with its gradient-masking flags, and
//! the vulnerability of one of its layers measured (I, I_wc, RV, the Theorem 3.4 bound); then
//! one table, Fig. 1, Fig. 2 and an HTML report ([`report`]). Each model's evaluation and
//! vulnerability are stored in its own folder and not recomputed: an interrupted comparison
//! resumes, and models can be added to a finished one.
pub mod folder;
pub mod report;

use crate::atomic::write_json_atomic;
use crate::attack::classifier::{
    autoattack_suite, strong_suite, ClassifierAttack, Method, Suite, AUTOATTACK_STEPS,
    SQUARE_QUERIES, STRONG_RESTARTS,
};
use crate::attack::AttackConfig;
use crate::data::{split, DataSource, Dataset};
use crate::error::{Error, Result};
use crate::eval::masking::{zero_gradient_images, MaskingChecks};
use crate::eval::robustness::{cascade, evaluate};
use crate::eval::vulnerability::{self, with_layer_problem, VulnerabilityReport};
use crate::mi::worst_case::{AttackGradient, CriticSpec, RepresentationMiConfig};
use crate::mi::CriticConfig;
use crate::model::Model;
use crate::report::cache::{cached, claim_folder};
use folder::ComparisonFolder;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;
use tch::Device;

/// Test images per evaluation batch.
const EVALUATION_BATCH: usize = 500;

/// A model of the comparison: its label (tables, plots, its folder) and its file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComparedModel {
    pub label: String,
    pub file: PathBuf,
}

impl ComparedModel {
    /// A wcmi checkpoint (`.safetensors`), else a TorchScript file.
    pub fn load(&self, device: Device) -> Result<Model> {
        if self.file.extension().is_some_and(|e| e == "safetensors") {
            Model::checkpoint(&self.file, device)
        } else {
            Model::torchscript(&self.file, device)
        }
    }
}

/// `LABEL=FILE`, or `FILE`, labelled by its file name without the extension (by its folder's
/// name for wcmi's `model.safetensors`). A label keeps letters, digits, `-`, `_` and `.`.
impl FromStr for ComparedModel {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (label, file) = match s.split_once('=') {
            Some((label, file)) => (label.to_string(), PathBuf::from(file)),
            None => {
                let file = PathBuf::from(s);
                let stem = file.file_stem().map(|n| n.to_string_lossy().into_owned());
                let label = match stem.as_deref() {
                    Some("model") => file
                        .parent()
                        .and_then(Path::file_name)
                        .map(|n| n.to_string_lossy().into_owned()),
                    _ => stem,
                };
                (label.unwrap_or_default(), file)
            }
        };
        let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
        if label.is_empty() || label.starts_with('.') || !label.chars().all(allowed) {
            return Err(format!(
                "'{s}': a model's label ('{label}') must be letters, digits, '-', '_' or '.'; \
                 name it as LABEL=FILE"
            ));
        }
        Ok(Self { label, file })
    }
}

/// What a comparison measures and how; recorded in its folder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompareConfig {
    pub dataset: DataSource,
    pub models: Vec<ComparedModel>,
    /// The layer whose vulnerability is measured in every model; `None`: a checkpoint's
    /// `encoder`, a TorchScript model's `encode`.
    pub layer: Option<String>,
    /// The paper's PGD, whose threat the suite and the worst-case MI share.
    pub attack: AttackConfig,
    pub suite: Suite,
    /// The first test images (class-balanced) evaluated and attacked.
    pub limit: usize,
    pub critic: CriticConfig,
    pub critic_spec: CriticSpec,
    /// Training images of each critic (the first of the training split).
    pub critic_train_limit: usize,
}

impl CompareConfig {
    /// What must match for a folder's results to be reused: everything but the model list.
    fn identity(&self) -> Self {
        Self {
            models: Vec::new(),
            ..self.clone()
        }
    }

    fn validate(&self) -> Result<()> {
        if self.models.is_empty() {
            return Err(Error::invalid("models", "name at least one model"));
        }
        for (i, model) in self.models.iter().enumerate() {
            if self.models[..i].iter().any(|m| m.label == model.label) {
                return Err(Error::invalid(
                    "models",
                    format!(
                        "two models are labelled '{}'; name them as LABEL=FILE",
                        model.label
                    ),
                ));
            }
        }
        crate::error::ensure_positive("limit", self.limit)?;
        self.attack.validate()?;
        self.critic.validate()
    }
}

/// A classifier's accuracy: natural, under the paper's PGD, and after each attack of the suite.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelEvaluation {
    /// What the file holds (`baseline-h`, `torchscript mine.pt`).
    pub kind: String,
    pub examples: usize,
    pub natural_accuracy: f64,
    pub pgd_accuracy: f64,
    /// (attack, accuracy after it and those before it) along the suite's cascade.
    pub suite_attacks: Vec<(String, f64)>,
    /// The per-sample worst case over the suite.
    pub suite_accuracy: f64,
    /// The gradient-masking flags raised (empty: none).
    pub masking_flags: Vec<String>,
    pub seconds: f64,
}

/// The vulnerability of the model's measured layer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LayerVulnerability {
    pub layer: String,
    pub width: i64,
    pub report: VulnerabilityReport,
    pub seconds: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelResult {
    pub model: ComparedModel,
    pub evaluation: ModelEvaluation,
    pub vulnerability: LayerVulnerability,
}

/// Everything a comparison measured: `results.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Comparison {
    pub config: CompareConfig,
    pub models: Vec<ModelResult>,
    pub wcmi_version: String,
}

/// Measures (or finds measured) every model of `config` on `data`, then writes `results.json`,
/// the Markdown table, the plots and the HTML report under `out`.
pub fn compare(
    data: &Dataset,
    config: &CompareConfig,
    out: &Path,
    device: Device,
) -> Result<Comparison> {
    config.validate()?;
    let _lock = crate::folder_lock::FolderLock::acquire(out, "comparison folder")?;
    let folder = ComparisonFolder::new(out);
    claim_folder(
        &folder.config(),
        folder.root(),
        config,
        CompareConfig::identity,
        "comparison",
    )?;
    let mut models = Vec::new();
    for compared in &config.models {
        let files = folder.model(&compared.label);
        let measured = compared.load(device).and_then(|model| {
            let evaluation = cached(
                &files.evaluation(),
                &format!("{}: evaluation", compared.label),
                || evaluate_model(&model, data, config),
            )?;
            let vulnerability = cached(
                &files.vulnerability(),
                &format!("{}: vulnerability", compared.label),
                || measure_vulnerability(&model, data, config, device),
            )?;
            Ok(ModelResult {
                model: compared.clone(),
                evaluation,
                vulnerability,
            })
        });
        models.push(measured.map_err(|e| in_model(e, compared))?);
    }
    let comparison = Comparison {
        config: config.clone(),
        models,
        wcmi_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    write_json_atomic(&folder.results(), &comparison)?;
    report::write(&comparison, &folder)?;
    Ok(comparison)
}

/// An error measuring `compared`, naming its file unless it does already (a file that does not
/// load names itself).
fn in_model(error: Error, compared: &ComparedModel) -> Error {
    match error {
        Error::Model { .. } | Error::Checkpoint { .. } => error,
        other => Error::model(
            &compared.file,
            format!("{} (labelled '{}')", other, compared.label),
        ),
    }
}

/// The first `config.limit` test images: natural, PGD, the suite's cascade, the masking flags.
fn evaluate_model(
    model: &Model,
    data: &Dataset,
    config: &CompareConfig,
) -> Result<ModelEvaluation> {
    let started = Instant::now();
    let classifier = model.classifier(data)?;
    let n = (config.limit as i64).min(data.test.len());
    let indices: Vec<i64> = (0..n).collect();
    // Every model faces the same random starts and searches, whatever its place in the list.
    crate::seed::seed_torch(config.critic.seed, crate::seed::Stream::Attack, 0);
    let pgd = ClassifierAttack {
        method: Method::Pgd,
        config: config.attack,
    };
    let paper = evaluate(
        classifier,
        &data.test,
        Some(&indices),
        EVALUATION_BATCH,
        &[pgd],
    )?;
    let attacks = match config.suite {
        Suite::Autoattack => autoattack_suite(&config.attack, AUTOATTACK_STEPS, SQUARE_QUERIES),
        Suite::Strong => strong_suite(&config.attack, STRONG_RESTARTS, AUTOATTACK_STEPS),
    };
    let suite = cascade(classifier, &data.test, &indices, EVALUATION_BATCH, &attacks)?;
    let zero = zero_gradient_images(classifier, &data.test, &indices, EVALUATION_BATCH)?;
    let masking_flags = MaskingChecks::new(zero, &suite, None).flags;
    Ok(ModelEvaluation {
        kind: model.name(),
        examples: paper.examples,
        natural_accuracy: paper.natural_accuracy,
        pgd_accuracy: paper.worst_case_accuracy,
        suite_attacks: suite
            .attacks
            .iter()
            .map(|a| (a.attack.clone(), a.accuracy))
            .collect(),
        suite_accuracy: suite.worst_case_accuracy,
        masking_flags,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// I, I_wc, RV and the bound of the model's layer, with a fresh critic (SPEC §4).
fn measure_vulnerability(
    model: &Model,
    data: &Dataset,
    config: &CompareConfig,
    device: Device,
) -> Result<LayerVulnerability> {
    let started = Instant::now();
    let name = config
        .layer
        .clone()
        .unwrap_or_else(|| model.default_layer().to_string());
    let layer = model.layer(&name, data)?;
    let mi = RepresentationMiConfig {
        critic: config.critic.clone(),
        critic_spec: config.critic_spec,
        attack: None,
        attack_gradient: AttackGradient::Representation,
    };
    let parts = split::train_validation(data.train.len(), 0.1, 0)?;
    let train: Vec<i64> = parts
        .train
        .into_iter()
        .take(config.critic_train_limit)
        .collect();
    let test: Vec<i64> = (0..data.test.len()).collect();
    let report = with_layer_problem(&layer, data, &train, &test, |problem| {
        vulnerability::measure(
            problem,
            &mi,
            config.attack,
            data.num_classes(),
            false,
            device,
        )
    })?;
    let width = layer.width;
    drop(layer);
    Ok(LayerVulnerability {
        layer: name,
        width,
        report,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_are_labelled_by_their_file_or_by_name() {
        let m: ComparedModel = "runs/wc-robust/model.safetensors".parse().unwrap();
        assert_eq!(m.label, "wc-robust");
        let m: ComparedModel = "exports/resnet18.pt".parse().unwrap();
        assert_eq!(
            (m.label.as_str(), m.file.as_path()),
            ("resnet18", Path::new("exports/resnet18.pt"))
        );
        let m: ComparedModel = "adv=exports/resnet18.pt".parse().unwrap();
        assert_eq!(m.label, "adv");
        let e = "a b=x.pt".parse::<ComparedModel>().unwrap_err();
        assert!(e.contains("'a b'") && e.contains("LABEL=FILE"), "{e}");
        assert!("=x.pt".parse::<ComparedModel>().is_err());
    }
}
