//! What the reproduction tests share: a tiny synthetic MNIST stand-in, a grid of one epoch
//! on it, and a walk over the files a run wrote.
use std::path::{Path, PathBuf};
use wcmi::data::{synthetic, Dataset, DatasetName};
use wcmi::mi::Bound;
use wcmi::nn::critic::CriticKind;
use wcmi::precision::Precision;
use wcmi::reproduce::{grid::Scope, ReproduceConfig};
use wcmi::train::preset::{EncoderPgd, Preset, PresetSettings};

/// 600 training and 300 test images of ten noisy class templates.
pub fn tiny() -> Dataset {
    Dataset::named(
        DatasetName::Mnist,
        synthetic::class_templates(600, [1, 28, 28], 10, 0.2, 7),
        synthetic::class_templates(300, [1, 28, 28], 10, 0.2, 8),
    )
}

/// The whole grid at one epoch, its MI critic the dot-product `global` one.
pub fn config() -> ReproduceConfig {
    ReproduceConfig {
        dataset: DatasetName::Mnist,
        preset: Preset::Quick,
        settings: PresetSettings {
            encoder_epochs: 1,
            head_epochs: 1,
            supervised_epochs: 1,
            critic_width: 16,
            encoder_bound: Bound::Infonce,
            encoder_critic: CriticKind::GlobalCosine,
            train_pgd_steps: Some(1),
            encoder_pgd: EncoderPgd::Training,
            train_limit: Some(400),
            lr: 1e-3,
            eval_limit: Some(100),
            strong_limit: 20,
            autoattack: true,
            mi_epochs: 1,
            mi_train_limit: 300,
            mi_test_batches: 2,
            precision: Precision::F32,
        },
        trials: 1,
        seed: 0,
        mi_bound: Bound::Infonce,
        mi_critic: CriticKind::Global,
        synthetic_data: false,
        scope: Scope::Grid,
    }
}

/// Every file under `dir`, at any depth (none when `dir` cannot be read).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}
