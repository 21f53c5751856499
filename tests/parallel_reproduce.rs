//! Steps run in processes of their own, two at once, give exactly the results of the same steps
//! run one after the other in one process (both with one thread, on this CPU): every step draws
//! its random numbers from the trial's seed alone.
use common::tiny;
use std::path::Path;
use std::process::Command;
use tch::Device;
use wcmi::nn::critic::CriticKind;
use wcmi::reproduce::{
    grid::Scope, reproduce, reproduce_in_processes, run_step, steps::TrialStep, ReproduceConfig,
};
use wcmi::train::preset::PresetSettings;

mod common;

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
    value.as_object_mut().unwrap().remove("seconds");
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
    let parallel = reproduce_in_processes(&config(), &two, 2, &command).unwrap();
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
