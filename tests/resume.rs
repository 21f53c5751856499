//! A run interrupted after an epoch and resumed ends with exactly the weights of an
//! uninterrupted run; a run that keeps its last epoch is the last epoch of its E.S. twin's.
use wcmi::attack::AttackConfig;
use wcmi::checkpoint;
use wcmi::data::{synthetic, Dataset, DatasetName};
use wcmi::train::classifier::{self, ClassifierConfig, Selection};
use wcmi::train::RunSettings;

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
