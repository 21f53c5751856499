//! The command-line interface: one file per subcommand.
pub mod bench;
pub mod common;
pub mod compare;
pub mod data;
pub mod demo;
pub mod estimate_mi;
pub mod evaluate;
pub mod jobs;
pub mod mixture_check;
pub mod reproduce;
pub mod train_encoder;
pub mod train_head;
pub mod train_supervised;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "wcmi",
    version,
    about = "Adversarially robust representations by worst-case mutual information maximisation"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: common::GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Download or describe datasets.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Train the supervised Baseline-H (encoder + MLP head) on labels.
    TrainSupervised(train_supervised::Args),
    /// Learn an encoder without labels: Deep InfoMax or worst-case MI maximisation.
    TrainEncoder(train_encoder::Args),
    /// Train a linear or MLP head on a frozen encoder, standardly or adversarially.
    TrainHead(train_head::Args),
    /// Evaluate a checkpoint on a dataset's test set.
    Evaluate(evaluate::Args),
    /// Estimate the MI between images and a model layer, normal or worst case.
    EstimateMi(estimate_mi::EstimateArgs),
    /// Normal and worst-case MI, representation vulnerability, and the Theorem 3.4 bound.
    Vulnerability(estimate_mi::VulnerabilityArgs),
    /// Estimated against exact representation vulnerability on the Gaussian mixture.
    MixtureCheck(mixture_check::Args),
    /// The paper's grid for one dataset, with results, plots and an HTML report.
    Reproduce(reproduce::Args),
    /// Several models on one dataset: accuracy, vulnerability, Fig. 1 and 2, an HTML report.
    Compare(compare::Args),
    /// A quick end-to-end run that ends with a results table.
    Demo(demo::Args),
    /// Time training steps beside the PyTorch peer.
    Bench(bench::Args),
    /// Time one step kind in this process (used by `bench`).
    #[command(hide = true)]
    BenchStep(bench::StepArgs),
}

/// The flag that sets a library setting ([`crate::error::Error::InvalidSetting`]): the setting
/// in kebab case, but for the settings whose flag says what the user does rather than what
/// the configuration holds.
fn flag(setting: &str) -> String {
    match setting {
        "run_folder" => "--out".to_string(),
        "selection" => "--training".to_string(),
        "models" => "MODEL".to_string(),
        s if s.chars().all(|c| c.is_ascii_lowercase() || c == '_') => {
            format!("--{}", s.replace('_', "-"))
        }
        other => other.to_string(),
    }
}

/// An error as one line, outermost context first (as anyhow's `{:#}`), with the library's
/// setting names replaced by the flags that set them.
pub fn message(error: &anyhow::Error) -> String {
    error
        .chain()
        .map(|cause| match cause.downcast_ref::<crate::error::Error>() {
            Some(crate::error::Error::InvalidSetting { setting, problem }) => {
                format!("{}: {problem}", flag(setting))
            }
            _ => cause.to_string(),
        })
        .collect::<Vec<_>>()
        .join(": ")
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    crate::runtime::configure();
    let device = cli.global.apply()?;
    match cli.command {
        Command::Data(command) => data::run(command, &cli.global),
        Command::TrainSupervised(args) => train_supervised::run(args, &cli.global, device),
        Command::TrainEncoder(args) => train_encoder::run(args, &cli.global, device),
        Command::TrainHead(args) => train_head::run(args, &cli.global, device),
        Command::Evaluate(args) => evaluate::run(args, &cli.global, device),
        Command::EstimateMi(args) => estimate_mi::run_estimate(args, &cli.global, device),
        Command::Vulnerability(args) => estimate_mi::run_vulnerability(args, &cli.global, device),
        Command::MixtureCheck(args) => mixture_check::run(args, &cli.global),
        Command::Reproduce(args) => reproduce::run(args, &cli.global, device),
        Command::Compare(args) => compare::run(args, &cli.global, device),
        Command::Demo(args) => demo::run(args, &cli.global, device),
        Command::Bench(args) => bench::run(args, &cli.global),
        Command::BenchStep(args) => bench::run_step(args, device),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn library_settings_are_named_by_their_flags() {
        let error = |setting: &str| {
            anyhow::Error::from(Error::invalid(setting, "must be positive, got 0"))
                .context("training")
        };
        assert_eq!(
            message(&error("batch_size")),
            "training: --batch-size: must be positive, got 0"
        );
        assert!(message(&error("run_folder")).starts_with("training: --out: "));
        assert!(message(&error("selection")).starts_with("training: --training: "));
        assert!(message(&error("WCMI_DATA")).starts_with("training: WCMI_DATA: "));
        let other = anyhow::Error::from(Error::data("/d/x", "truncated")).context("loading");
        assert_eq!(message(&other), "loading: /d/x: truncated");
    }
}
