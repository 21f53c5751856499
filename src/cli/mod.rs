//! The command-line interface: one file per subcommand.
pub mod bench;
pub mod common;
pub mod data;
pub mod demo;
pub mod evaluate;
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
    /// Evaluate a checkpoint on a dataset's test set.
    Evaluate(evaluate::Args),
    /// A quick end-to-end run that ends with a results table.
    Demo(demo::Args),
    /// Time training steps beside the PyTorch peer.
    Bench(bench::Args),
    /// Time one step kind in this process (used by `bench`).
    #[command(hide = true)]
    BenchStep(bench::StepArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let device = cli.global.apply()?;
    match cli.command {
        Command::Data(command) => data::run(command, &cli.global),
        Command::TrainSupervised(args) => train_supervised::run(args, &cli.global, device),
        Command::Evaluate(args) => evaluate::run(args, &cli.global, device),
        Command::Demo(args) => demo::run(args, &cli.global, device),
        Command::Bench(args) => bench::run(args, &cli.global),
        Command::BenchStep(args) => bench::run_step(args, device),
    }
}
