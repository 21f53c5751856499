//! `wcmi demo`: the README's main command. The paper's headline comparison at the demo preset
//! on MNIST (or on synthetic class-template images when no data directory is found): a DIM and a
//! worst-case encoder, the same robust MLP head on each, DIM's standard MLP head, both encoders'
//! vulnerability and Theorem 3.4 bound; it ends with one small table, one sentence on what it
//! shows, and the path of the HTML report. The whole grid is `wcmi reproduce`.
use super::common::GlobalArgs;
use super::jobs::JobArgs;
use crate::data::{dir, synthetic, Dataset, DatasetName};
use crate::mi::Bound;
use crate::nn::critic::CriticKind;
use crate::reproduce::folder::ReproductionFolder;
use crate::reproduce::grid::{self, Scope};
use crate::reproduce::{report, ReproduceConfig};
use crate::train::preset::Preset;
use crate::train::run::RunFiles;
use std::path::PathBuf;
use std::time::Instant;
use tch::Device;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output folder; a second run there reuses what the first finished.
    #[arg(long, default_value = "runs/demo")]
    pub out: PathBuf,
    #[command(flatten)]
    pub jobs: JobArgs,
}

fn synthetic_dataset() -> Dataset {
    let shape = DatasetName::Mnist.image_shape();
    Dataset::named(
        DatasetName::Mnist,
        synthetic::class_templates(6000, shape, 10, 0.3, 1),
        synthetic::class_templates(1000, shape, 10, 0.3, 2),
    )
}

pub fn run(args: Args, global: &GlobalArgs, device: Device) -> anyhow::Result<()> {
    let started = Instant::now();
    let (data, synthetic_data) = match dir::resolve(global.data_dir.as_deref()) {
        Ok(_) => (global.load_dataset(DatasetName::Mnist, device)?, false),
        Err(_) => {
            eprintln!("no data directory found: using synthetic class-template images");
            (synthetic_dataset().to_device(device), true)
        }
    };
    let config = ReproduceConfig {
        dataset: DatasetName::Mnist,
        preset: Preset::Demo,
        settings: Preset::Demo.settings(),
        trials: 1,
        seed: global.seed,
        mi_bound: Bound::Infonce,
        mi_critic: CriticKind::GlobalCosine,
        synthetic_data,
        scope: Scope::Headline,
    };
    let Some(results) = args.jobs.run(&data, &config, &args.out, global, device)? else {
        return Ok(());
    };
    let folder = ReproductionFolder::new(&args.out);
    print!("{}", report::headline_markdown(&results));
    println!(
        "The demo preset trains for {} epochs on the first {} training images (a tenth of them \
         held out for validation); `wcmi reproduce --preset cpu` runs the paper's whole table.",
        config.settings.encoder_epochs,
        config
            .settings
            .train_limit
            .map_or(data.train.len(), |l| (l as i64).min(data.train.len())),
    );
    if !synthetic_data {
        let [worst_case_head, ..] = grid::headline_cells();
        let weights = RunFiles::new(&folder.trial(0).cell(&worst_case_head)).best;
        let data_dir = global
            .data_dir
            .as_ref()
            .map_or(String::new(), |d| format!(" --data-dir {}", d.display()));
        println!(
            "AutoAttack on the worst-case encoder's robust head:\n  wcmi evaluate --checkpoint {} \
             --attack autoattack{data_dir}",
            weights.display()
        );
    }
    println!(
        "report: {}\nfinished in {:.0} s",
        folder.report().display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
