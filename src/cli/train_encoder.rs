//! `wcmi train-encoder`: Deep InfoMax or worst-case MI maximisation, without labels (SPEC §4).
use super::common::{default_out, positive, GlobalArgs, RunArgs, ThreatArgs};
use crate::data::DatasetName;
use crate::mi::worst_case::AttackGradient;
use crate::mi::Bound;
use crate::nn::critic::CriticKind;
use crate::train::encoder::{self, EncoderConfig, EncoderObjective};
use tch::Device;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// mnist, fashion-mnist or cifar10.
    #[arg(long)]
    pub dataset: DatasetName,
    /// `dim` (standard MI maximisation) or `worst-case` (the paper's method).
    #[arg(long, value_enum)]
    pub objective: EncoderObjective,
    /// The MI bound maximised (default: the preset's).
    #[arg(long, value_enum)]
    pub bound: Option<Bound>,
    /// Critic width H (default: the preset's).
    #[arg(long, value_parser = positive, allow_hyphen_values = true)]
    pub critic_width: Option<usize>,
    /// The critic whose Î is maximised: `local` (SPEC §3), `global` or `global-cosine`
    /// (default: the preset's).
    #[arg(long, value_enum)]
    pub critic: Option<CriticKind>,
    /// The global-cosine critic's temperature τ: scores in [−1/τ, 1/τ] (default 0.2).
    #[arg(long, allow_hyphen_values = true)]
    pub critic_temperature: Option<f64>,
    /// Where the worst-case attack's gradient flows.
    #[arg(long, value_enum, default_value = "representation")]
    pub attack_gradient: AttackGradient,
    #[command(flatten)]
    pub threat: ThreatArgs,
    /// Start the PGD of the worst-case objective and of the per-epoch validation worst-case Î
    /// at a random point of the ball instead of the image (the paper's code starts at the
    /// image) [default: the preset's: true for cpu, false otherwise].
    #[arg(long, action = clap::ArgAction::Set)]
    pub random_start: Option<bool>,
    #[command(flatten)]
    pub run: RunArgs,
}

pub fn run(args: Args, global: &GlobalArgs, device: Device) -> anyhow::Result<()> {
    let preset = args.run.preset.settings();
    let attack = args.threat.training_config(
        args.dataset,
        args.random_start.unwrap_or(preset.encoder_random_start()),
        preset.encoder_pgd_steps(),
    )?;
    let mut config = EncoderConfig::from_preset(args.objective, &preset, attack, global.seed);
    config.bound = args.bound.unwrap_or(config.bound);
    config.critic = args.critic.unwrap_or(config.critic);
    config.critic_temperature = args.critic_temperature;
    config.critic_width = args.critic_width.map_or(config.critic_width, |w| w as i64);
    config.run = args
        .run
        .settings(&preset, preset.encoder_epochs, global.seed);
    config.attack_gradient = args.attack_gradient;
    config.validate()?;
    let data = global.load_dataset(args.dataset, device)?;
    let kind = match args.objective {
        EncoderObjective::Dim => "encoder-dim",
        EncoderObjective::WorstCase => "encoder-worst-case",
    };
    let out = args
        .run
        .out
        .unwrap_or_else(|| default_out(kind, args.dataset, global.seed));
    let outcome = encoder::train(&data, &config, &out, args.run.resume, device)?;
    println!("encoder: {}", outcome.checkpoint.display());
    Ok(())
}
