//! `wcmi compare MODEL…`: several models on one dataset side by side, the paper's §6.1 for
//! models trained anywhere. Running it again on the same `--out` reuses every model measured.
use super::common::{positive, GlobalArgs, ThreatArgs};
use super::estimate_mi::CriticArgs;
use crate::attack::classifier::Suite;
use crate::compare::{self, folder::ComparisonFolder, report, CompareConfig, ComparedModel};
use crate::data::DataSource;
use anyhow::Context;
use std::path::PathBuf;
use std::time::Instant;
use tch::Device;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The models: wcmi checkpoints (`.safetensors`, with a head) or TorchScript files, each as
    /// FILE (labelled by its name, a checkpoint by its folder's) or LABEL=FILE.
    #[arg(required = true, value_name = "MODEL")]
    pub models: Vec<ComparedModel>,
    /// The dataset: a name or an image folder (then --eps, --steps and --step-size are needed)
    /// (default: the first checkpoint's own).
    #[arg(long)]
    pub dataset: Option<DataSource>,
    /// The layer measured in every model (default: a checkpoint's `encoder`, a TorchScript
    /// model's `encode`; `logits` works for both).
    #[arg(long)]
    pub layer: Option<String>,
    /// The suite whose per-image worst case is the robust accuracy.
    #[arg(long, value_enum, default_value = "autoattack")]
    pub suite: Suite,
    /// Evaluate and attack the first N test images.
    #[arg(long, default_value_t = 1000, value_parser = positive, allow_hyphen_values = true)]
    pub limit: usize,
    #[command(flatten)]
    pub threat: ThreatArgs,
    #[command(flatten)]
    pub critic: CriticArgs,
    /// Output folder (default: runs/compare-<dataset>).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: Args, global: &GlobalArgs, device: Device) -> anyhow::Result<()> {
    let started = Instant::now();
    let dataset = match args.dataset {
        Some(dataset) => dataset,
        None => {
            let first = &args.models[0];
            let model = first.load(device)?;
            model.dataset().map(DataSource::Named).with_context(|| {
                format!(
                    "--dataset: the first model {} names no dataset; pass one",
                    first.file.display()
                )
            })?
        }
    };
    let data = global.load_source(&dataset, device)?;
    let config = CompareConfig {
        attack: args.threat.config(&dataset, false, 1)?,
        dataset,
        models: args.models,
        layer: args.layer,
        suite: args.suite,
        limit: args.limit,
        critic: args.critic.config(global.seed)?,
        critic_spec: args.critic.spec(data.image_shape()),
        critic_train_limit: args.critic.train_limit,
    };
    let out = args.out.unwrap_or_else(|| {
        PathBuf::from("runs").join(format!("compare-{}", config.dataset.slug()))
    });
    let comparison = compare::compare(&data, &config, &out, device)?;
    print!("{}", report::markdown(&comparison));
    println!(
        "report: {}\nfinished in {:.0} s",
        ComparisonFolder::new(&out).report().display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
