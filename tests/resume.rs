//! A run interrupted after an epoch and resumed ends with exactly the weights of an
//! uninterrupted run; a run that keeps its last epoch is the last epoch of its E.S. twin's; and
//! a reproduction's steps run in processes of their own, two at once, give exactly the results
//! of the same steps run one after the other in one process (both with one thread, on this
//! CPU): every step draws its random numbers from the trial's seed alone.
use common::{files_under, tiny};
use std::path::Path;
use std::process::Command;
use tch::Device;
use wcmi::attack::AttackConfig;
use wcmi::checkpoint;
use wcmi::data::{synthetic, Dataset, DatasetName};
use wcmi::nn::critic::CriticKind;
use wcmi::reproduce::{
    grid::Scope, reproduce, reproduce_in_processes, run_step, steps::TrialStep, ReproduceConfig,
};
use wcmi::train::classifier::{self, ClassifierConfig, Selection};
use wcmi::train::preset::PresetSettings;
use wcmi::train::RunSettings;

mod common;

/// libtorch's random generator is global: runs compared bit for bit must not overlap.
static ONE_RUN_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn tiny_dataset() -> Dataset {
    Dataset::named(
        DatasetName::Mnist,
        synthetic::class_templates(300, [1, 28, 28], 10, 0.2, 5),
        synthetic::class_templates(50, [1, 28, 28], 10, 0.2, 6),
    )
}

#[test]
fn resumed_training_matches_uninterrupted_training() {
    let _alone = ONE_RUN_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    tch::set_num_threads(1);
    let data = tiny_dataset();
    let dir = tempfile::tempdir().unwrap();
    let config = ClassifierConfig {
        run: RunSettings {
            epochs: 3,
            batch_size: 64,
            lr: 1e-3,
            seed: 11,
            ..Default::default()
        },
        ..Default::default()
    };
    let device = tch::Device::Cpu;

    let straight = dir.path().join("straight");
    classifier::train(&data, &config, &straight, false, device).unwrap();

    let interrupted = dir.path().join("interrupted");
    let first = ClassifierConfig {
        run: RunSettings {
            epochs: 1,
            ..config.run
        },
        ..config.clone()
    };
    classifier::train(&data, &first, &interrupted, false, device).unwrap();
    let outcome = classifier::train(&data, &config, &interrupted, true, device).unwrap();
    assert_eq!(outcome.epochs_run, 2);

    let (info_a, a) = checkpoint::read(&straight.join("resume.safetensors")).unwrap();
    let (info_b, b) = checkpoint::read(&interrupted.join("resume.safetensors")).unwrap();
    assert_eq!((info_a.epoch, info_b.epoch), (3, 3));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, t) in &a {
        assert!(t.equal(&b[name]), "{name} differs after resuming");
    }
    let log = std::fs::read_to_string(interrupted.join("log.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 3);

    // A different experiment in the same folder is refused.
    let other = ClassifierConfig {
        run: RunSettings {
            lr: 1e-2,
            epochs: 4,
            ..config.run
        },
        ..config.clone()
    };
    let e = classifier::train(&data, &other, &interrupted, true, device)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("resume.safetensors")
            && e.contains("different run (lr: 0.01 here, 0.001 in the run)"),
        "{e}"
    );
    // Fewer epochs than finished: refused, pointing at the kept model.
    let fewer = ClassifierConfig {
        run: RunSettings {
            epochs: 2,
            ..config.run
        },
        ..config
    };
    let e = classifier::train(&data, &fewer, &interrupted, true, device)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("epochs: 2 is fewer than the 3 epochs") && e.contains("model.safetensors"),
        "{e}"
    );
}

#[test]
fn a_last_epoch_run_is_its_early_stopped_twins_last_epoch() {
    let _alone = ONE_RUN_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    tch::set_num_threads(1);
    let data = tiny_dataset();
    let dir = tempfile::tempdir().unwrap();
    let device = tch::Device::Cpu;
    let last = ClassifierConfig {
        run: RunSettings {
            epochs: 2,
            batch_size: 64,
            lr: 1e-3,
            seed: 4,
            ..Default::default()
        },
        selection: Selection::Last,
        ..Default::default()
    };
    let early_stopped = ClassifierConfig {
        validation_attack: Some(AttackConfig::linf(0.3, 2, 0.1)),
        selection: Selection::BestAdversarial,
        ..last.clone()
    };
    let [alone, twin, kept] = ["alone", "twin", "kept"].map(|d| dir.path().join(d));
    classifier::train(&data, &last, &alone, false, device).unwrap();
    classifier::train(&data, &early_stopped, &twin, false, device).unwrap();
    let outcome = classifier::keep_last_of(&last, &early_stopped, &twin, &kept).unwrap();
    assert_eq!((outcome.best_epoch, outcome.epochs_run), (2, 0));

    let (info_a, a) = checkpoint::read(&alone.join("model.safetensors")).unwrap();
    let (info_b, b) = checkpoint::read(&outcome.checkpoint).unwrap();
    assert_eq!((info_a.epoch, info_b.epoch), (2, 2));
    assert_eq!(info_b.config, serde_json::to_value(&last).unwrap());
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, t) in &a {
        assert!(
            t.equal(&b[name]),
            "{name} differs from the run trained alone"
        );
    }
    let log = std::fs::read_to_string(kept.join("log.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 2);
    assert!(!kept.join("resume.safetensors").exists());

    // A twin that trains differently, or has not finished, is refused.
    let other = ClassifierConfig {
        run: RunSettings {
            lr: 1e-2,
            ..last.run
        },
        ..early_stopped.clone()
    };
    let e = classifier::keep_last_of(&last, &other, &twin, &kept)
        .unwrap_err()
        .to_string();
    assert!(e.contains("trains differently"), "{e}");
    let longer = |c: &ClassifierConfig| ClassifierConfig {
        run: RunSettings { epochs: 3, ..c.run },
        ..c.clone()
    };
    let e = classifier::keep_last_of(&longer(&last), &longer(&early_stopped), &twin, &kept)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("resume.safetensors") && e.contains("has finished 2 of the 3 epochs"),
        "{e}"
    );
}

const STEP: &str = "WCMI_TEST_STEP";
const OUT: &str = "WCMI_TEST_OUT";

/// The headline comparison on the tiny data, without AutoAttack, its MI critic the default
/// global-cosine one.
fn config() -> ReproduceConfig {
    let grid = common::config();
    ReproduceConfig {
        settings: PresetSettings {
            autoattack: false,
            ..grid.settings
        },
        mi_critic: CriticKind::GlobalCosine,
        synthetic_data: true,
        scope: Scope::Headline,
        ..grid
    }
}

/// A result without its timing, which differs between any two runs.
fn untimed(value: &impl serde::Serialize) -> serde_json::Value {
    let mut value = serde_json::to_value(value).unwrap();
    for timing in ["seconds", "phases"] {
        value.as_object_mut().unwrap().remove(timing);
    }
    value
}

/// The process of one step: this test binary run again with only this function, which then
/// runs the step named in the environment. Not a test of its own.
#[test]
#[ignore = "a step's process, started by the test below"]
fn step_process() {
    let (Ok(step), Ok(out)) = (std::env::var(STEP), std::env::var(OUT)) else {
        return;
    };
    tch::set_num_threads(1);
    run_step(&tiny(), &config(), out.as_ref(), &step, Device::Cpu).unwrap();
}

/// Every step log under `dir`, each after its path: what a failed step process printed.
fn logs(dir: &Path) -> String {
    files_under(dir)
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            format!("--- {}\n{text}\n", path.display())
        })
        .collect()
}

/// Copies the folder `from` to `to`, recursively.
fn copy_folder(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_folder(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

#[test]
fn steps_in_two_processes_give_the_results_of_one_process() {
    let _alone = ONE_RUN_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    let sequential = reproduce(&tiny(), &config(), &one, Device::Cpu).unwrap();
    // The second folder lacks the DIM encoder (so also its vulnerability) and the worst-case
    // encoder's robust head: those three steps run again, in processes of their own.
    copy_folder(&one, &two);
    for redo in ["encoder-dim", "worst-case-mlp-adversarial"] {
        std::fs::remove_dir_all(two.join("trial-0").join(redo)).unwrap();
    }
    let program = std::env::current_exe().unwrap();
    let command = |step: &TrialStep| {
        let mut c = Command::new(&program);
        c.args([
            "--exact",
            "step_process",
            "--ignored",
            "--test-threads",
            "1",
        ])
        .env(STEP, step.name())
        .env(OUT, &two);
        c
    };
    let parallel = reproduce_in_processes(&config(), &two, 2, &command)
        .unwrap_or_else(|e| panic!("{e}\n{}", logs(&two.join("logs"))));
    assert!(two.join("trial-0/encoder-dim/model.safetensors").is_file());
    assert_eq!(sequential.cells.len(), 3);
    assert_eq!(sequential.representations.len(), 2);
    for (a, b) in sequential.cells.iter().zip(&parallel.cells) {
        assert_eq!(untimed(a), untimed(b));
    }
    for (a, b) in sequential
        .representations
        .iter()
        .zip(&parallel.representations)
    {
        assert_eq!(untimed(a), untimed(b));
    }
    assert!(two.join("logs/trial-0/encoder-worst-case.log").is_file());
    let err = run_step(
        &tiny(),
        &config(),
        &two,
        "trial-0/supervised-mlp-standard",
        Device::Cpu,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("no step 'trial-0/supervised-mlp-standard'"),
        "{err}"
    );
}
