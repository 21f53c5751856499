//! `wcmi evaluate --checkpoint C [--attack …]`: natural accuracy and accuracy under attacks,
//! printed as a table and written as JSON.
use super::common::{positive, GlobalArgs, ThreatArgs};
use crate::atomic::write_json_atomic;
use crate::attack::classifier::{strong_suite, ClassifierAttack, Method};
use crate::checkpoint;
use crate::data::DatasetName;
use crate::eval::robustness::{self, RobustnessReport};
use crate::report::table;
use anyhow::Context;
use clap::ValueEnum;
use serde::Serialize;
use std::path::{Path, PathBuf};
use tch::Device;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AttackName {
    /// PGD on the cross-entropy (the paper's: no random start unless --random-start).
    Pgd,
    Fgsm,
    /// APGD on the cross-entropy (--apgd-steps iterations).
    ApgdCe,
    /// APGD on the DLR loss.
    ApgdDlr,
    /// Per-sample worst case over PGD, PGD with random restarts, APGD-CE and APGD-DLR, run as
    /// a cascade (each attack on the images the previous ones left correctly classified).
    Strong,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A classifier checkpoint (`model.safetensors` of a training run).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Dataset to evaluate on (default: the checkpoint's own).
    #[arg(long)]
    pub dataset: Option<DatasetName>,
    /// Attacks to run (comma-separated); none gives natural accuracy only.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub attack: Vec<AttackName>,
    #[command(flatten)]
    pub threat: ThreatArgs,
    /// Independent runs of each attack (the strong evaluation's random-start PGD uses 5 when
    /// this is 1).
    #[arg(long, default_value_t = 1, value_parser = positive, allow_hyphen_values = true)]
    pub restarts: usize,
    /// Start PGD at a random point of the ball.
    #[arg(long)]
    pub random_start: bool,
    /// Iterations of APGD.
    #[arg(long, default_value_t = 100, value_parser = positive, allow_hyphen_values = true)]
    pub apgd_steps: usize,
    /// Evaluate on the first N test images only.
    #[arg(long, value_parser = positive, allow_hyphen_values = true)]
    pub limit: Option<usize>,
    /// Where to write the JSON result (default: beside the checkpoint, eval-<dataset>.json).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, default_value_t = 500, value_parser = positive, allow_hyphen_values = true)]
    pub batch_size: usize,
}

#[derive(Serialize)]
struct EvaluationResult {
    checkpoint: PathBuf,
    model: String,
    dataset: DatasetName,
    #[serde(flatten)]
    report: RobustnessReport,
}

fn attacks(args: &Args, dataset: DatasetName) -> anyhow::Result<Vec<ClassifierAttack>> {
    let base = args
        .threat
        .config(dataset, args.random_start, args.restarts)?;
    let apgd = crate::attack::AttackConfig {
        steps: args.apgd_steps,
        ..base
    };
    let mut out = Vec::new();
    for name in &args.attack {
        match name {
            AttackName::Pgd => out.push(ClassifierAttack {
                method: Method::Pgd,
                config: base,
            }),
            AttackName::Fgsm => out.push(ClassifierAttack {
                method: Method::Fgsm,
                config: base,
            }),
            AttackName::ApgdCe => out.push(ClassifierAttack {
                method: Method::ApgdCe,
                config: apgd,
            }),
            AttackName::ApgdDlr => out.push(ClassifierAttack {
                method: Method::ApgdDlr,
                config: apgd,
            }),
            AttackName::Strong => {
                let paper = crate::attack::AttackConfig {
                    random_start: false,
                    restarts: 1,
                    ..base
                };
                out.extend(strong_suite(&paper, args.restarts.max(5), args.apgd_steps));
            }
        }
    }
    out.dedup();
    Ok(out)
}

pub fn run(args: Args, global: &GlobalArgs, device: Device) -> anyhow::Result<()> {
    let loaded = checkpoint::load_model(&args.checkpoint, device)?;
    let dataset = args.dataset.or(loaded.info.dataset).with_context(|| {
        format!(
            "--dataset: the checkpoint {} names no dataset; pass one",
            args.checkpoint.display()
        )
    })?;
    let expected = loaded.info.model.image_shape();
    anyhow::ensure!(
        expected == dataset.image_shape(),
        "--dataset {dataset}: its images are {:?} but the checkpoint {} expects {:?}",
        dataset.image_shape(),
        args.checkpoint.display(),
        expected
    );
    if args.attack.is_empty() {
        args.threat.refuse_unused("--attack")?;
    }
    let attacks = attacks(&args, dataset)?;
    let data = global.load_dataset(dataset, device)?;
    let test = match args.limit {
        Some(n) => data.test.head(n as i64),
        None => data.test,
    };
    let model = loaded.network.classifier()?;
    let report = if args.attack.contains(&AttackName::Strong) {
        let all: Vec<i64> = (0..test.len()).collect();
        robustness::cascade(model, &test, &all, args.batch_size, &attacks)?
    } else {
        robustness::evaluate(model, &test, None, args.batch_size, &attacks)?
    };
    let mut rows = vec![vec![
        "natural".to_string(),
        format!("{:.2}", 100.0 * report.natural_accuracy),
    ]];
    rows.extend(
        report
            .attacks
            .iter()
            .map(|a| vec![a.attack.clone(), format!("{:.2}", 100.0 * a.accuracy)]),
    );
    if report.attacks.len() > 1 {
        rows.push(vec![
            "worst case".to_string(),
            format!("{:.2}", 100.0 * report.worst_case_accuracy),
        ]);
    }
    let threat = attacks.first().map_or(String::new(), |a| {
        format!(", {:?} ε = {:.4}", a.config.norm, a.config.eps)
    });
    println!(
        "{} on {dataset} test ({} images{threat})",
        loaded.info.model.name(),
        report.examples
    );
    let column = if report.cascade {
        "accuracy % (after this attack and those above)"
    } else {
        "accuracy %"
    };
    print!("{}", table::markdown(&["attack", column], &rows));
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_result_path(&args.checkpoint, dataset));
    write_result(
        &args.checkpoint,
        loaded.info.model.name(),
        dataset,
        report,
        &out,
    )
}

/// Where an evaluation of `checkpoint` on `dataset` is written unless told otherwise.
pub fn default_result_path(checkpoint: &Path, dataset: DatasetName) -> PathBuf {
    checkpoint.with_file_name(format!("eval-{dataset}.json"))
}

/// Writes an evaluation's JSON (atomically) and says where.
pub fn write_result(
    checkpoint: &Path,
    model: &str,
    dataset: DatasetName,
    report: RobustnessReport,
    out: &Path,
) -> anyhow::Result<()> {
    let result = EvaluationResult {
        checkpoint: checkpoint.to_path_buf(),
        model: model.to_string(),
        dataset,
        report,
    };
    write_json_atomic(out, &result)?;
    println!("written: {}", out.display());
    Ok(())
}
