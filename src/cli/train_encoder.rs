//! `wcmi train-encoder`: Deep InfoMax or worst-case MI maximisation, without labels (SPEC §4).
use super::common::{default_out, positive, GlobalArgs, ThreatArgs};
use crate::data::DatasetName;
use crate::mi::worst_case::AttackGradient;
use crate::mi::Bound;
use crate::train::encoder::{self, EncoderConfig, EncoderObjective};
use crate::train::preset::Preset;
use std::path::PathBuf;
use tch::Device;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// mnist, fashion-mnist or cifar10.
    #[arg(long)]
    pub dataset: DatasetName,
    /// `dim` (standard MI maximisation) or `worst-case` (the paper's method).
    #[arg(long, value_enum)]
    pub objective: EncoderObjective,
    /// The MI bound maximised.
    #[arg(long, value_enum, default_value = "dv")]
    pub bound: Bound,
    /// Epochs, critic width, training PGD steps and data size.
    #[arg(long, value_enum, default_value = "paper")]
    pub preset: Preset,
    /// Critic width H (default: the preset's).
    #[arg(long, value_parser = positive)]
    pub critic_width: Option<usize>,
    /// Epochs (default: the preset's).
    #[arg(long, value_parser = positive, allow_negative_numbers = true)]
    pub epochs: Option<usize>,
    #[arg(long, default_value_t = 128, value_parser = positive, allow_negative_numbers = true)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 1e-4)]
    pub lr: f64,
    /// Use only the first N training images (default: the preset's).
    #[arg(long, value_parser = positive)]
    pub train_limit: Option<usize>,
    /// Where the worst-case attack's gradient flows.
    #[arg(long, value_enum, default_value = "representation")]
    pub attack_gradient: AttackGradient,
    #[command(flatten)]
    pub threat: ThreatArgs,
    /// Output folder (default: runs/encoder-<objective>-<dataset>-seed<seed>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue from the output folder's last checkpoint.
    #[arg(long)]
    pub resume: bool,
}

pub fn run(args: Args, global: &GlobalArgs, device: Device) -> anyhow::Result<()> {
    let preset = args.preset.settings();
    let config = EncoderConfig {
        objective: args.objective,
        bound: args.bound,
        critic_width: args.critic_width.map_or(preset.critic_width, |w| w as i64),
        epochs: args.epochs.unwrap_or(preset.encoder_epochs),
        batch_size: args.batch_size,
        lr: args.lr,
        attack: args
            .threat
            .training_config(args.dataset, false, preset.train_pgd_steps)?,
        attack_gradient: args.attack_gradient,
        val_fraction: 0.1,
        split_seed: 0,
        train_limit: args.train_limit.or(preset.train_limit),
        val_batches: 5,
        seed: global.seed,
    };
    config.validate()?;
    let data = global.load_dataset(args.dataset, device)?;
    let kind = match args.objective {
        EncoderObjective::Dim => "encoder-dim",
        EncoderObjective::WorstCase => "encoder-worst-case",
    };
    let out = args
        .out
        .unwrap_or_else(|| default_out(kind, args.dataset, global.seed));
    let outcome = encoder::train(&data, &config, &out, args.resume, device)?;
    println!("encoder: {}", outcome.checkpoint.display());
    Ok(())
}
