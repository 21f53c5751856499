//! `--jobs` and `--step` of `reproduce` and `demo`: a reproduction's steps in several processes
//! at once, each one this command run again with `--step` and its share of the threads.
use super::common::{positive, GlobalArgs};
use crate::data::Dataset;
use crate::reproduce::{self, steps::TrialStep, ReproduceConfig, Results};
use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use tch::Device;

#[derive(clap::Args, Debug)]
pub struct JobArgs {
    /// Steps run at once, each in its own process with an equal share of --threads: on a CPU
    /// two processes of one thread get more done than one of two (default: 2 on a CPU with at
    /// least 2 threads, else 1).
    #[arg(long, value_parser = positive, allow_hyphen_values = true)]
    pub jobs: Option<usize>,
    /// Run one step of the reproduction alone, with the steps it needs unless they finished:
    /// what each --jobs process runs. `trial-T/` and an encoder's or a cell's folder name
    /// (`trial-0/encoder-dim`, `trial-0/worst-case-mlp-adversarial`) or
    /// `vulnerability-<representation>`.
    #[arg(long, conflicts_with = "jobs")]
    pub step: Option<String>,
}

impl JobArgs {
    /// Runs the reproduction of `config` in `out` as the flags say; `None` after `--step`,
    /// which leaves the results to the process that started it.
    pub fn run(
        &self,
        data: &Dataset,
        config: &ReproduceConfig,
        out: &Path,
        global: &GlobalArgs,
        device: Device,
    ) -> anyhow::Result<Option<Results>> {
        if let Some(step) = &self.step {
            reproduce::run_step(data, config, out, step, device)?;
            return Ok(None);
        }
        let threads = global
            .threads
            .unwrap_or_else(|| tch::get_num_threads().max(1) as usize);
        let on_cpu = device == Device::Cpu;
        let jobs = self.jobs.unwrap_or(if on_cpu { threads.min(2) } else { 1 });
        if jobs == 1 {
            return Ok(Some(reproduce::reproduce(data, config, out, device)?));
        }
        anyhow::ensure!(
            !on_cpu || jobs <= threads,
            "--jobs {jobs}: each process needs a thread of its own, and there are {threads} \
             (--threads)"
        );
        let program = std::env::current_exe()
            .map_err(|e| anyhow::anyhow!("cannot find this program to run its steps: {e}"))?;
        let arguments = arguments_but_jobs(std::env::args_os().skip(1));
        let per_job = (threads / jobs).max(1);
        let command = |step: &TrialStep| {
            let mut command = Command::new(&program);
            command.args(&arguments).args([
                "--step",
                &step.name(),
                "--threads",
                &per_job.to_string(),
            ]);
            command
        };
        Ok(Some(reproduce::reproduce_in_processes(
            config, out, jobs, &command,
        )?))
    }
}

/// This command's arguments without `--jobs` and `--threads`, which each step's process gets
/// anew.
fn arguments_but_jobs(mut arguments: impl Iterator<Item = OsString>) -> Vec<OsString> {
    let mut kept = Vec::new();
    while let Some(argument) = arguments.next() {
        let text = argument.to_string_lossy();
        if text == "--jobs" || text == "--threads" {
            arguments.next();
        } else if !(text.starts_with("--jobs=") || text.starts_with("--threads=")) {
            kept.push(argument);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steps_process_gets_the_command_without_jobs_and_threads() {
        let given = [
            "reproduce",
            "--dataset",
            "mnist",
            "--jobs",
            "2",
            "--threads=4",
            "--seed",
            "3",
            "--threads",
            "2",
            "--jobs=2",
            "--out",
            "x",
        ];
        let kept = arguments_but_jobs(given.iter().map(OsString::from));
        assert_eq!(
            kept,
            [
                "reproduce",
                "--dataset",
                "mnist",
                "--seed",
                "3",
                "--out",
                "x"
            ]
            .map(OsString::from)
        );
    }
}
