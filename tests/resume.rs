//! A run interrupted after an epoch and resumed ends with exactly the weights of an
//! uninterrupted run.
use wcmi::checkpoint;
use wcmi::data::{synthetic, Dataset, DatasetName};
use wcmi::train::classifier::{self, ClassifierConfig};
use wcmi::train::RunSettings;

fn tiny_dataset() -> Dataset {
    Dataset::named(
        DatasetName::Mnist,
        synthetic::class_templates(300, [1, 28, 28], 10, 0.2, 5),
        synthetic::class_templates(50, [1, 28, 28], 10, 0.2, 6),
    )
}

#[test]
fn resumed_training_matches_uninterrupted_training() {
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
