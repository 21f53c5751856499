//! The real datasets in ../shared/data load with their published sizes and statistics, and a
//! short supervised run on a small MNIST subset learns, and falls to AutoAttack with no
//! gradient-masking flag raised.
use std::path::Path;
use wcmi::attack::classifier::autoattack_suite;
use wcmi::checkpoint;
use wcmi::data::{Dataset, DatasetName};
use wcmi::eval::masking::{self, MaskingChecks};
use wcmi::eval::robustness::cascade;
use wcmi::train::classifier::{self, ClassifierConfig};
use wcmi::train::RunSettings;

fn load(name: DatasetName) -> Dataset {
    Dataset::load(name, Path::new("../shared/data")).expect("shared/data holds the datasets")
}

#[test]
fn mnist_like_sets_have_published_sizes_and_statistics() {
    for (name, mean, std) in [
        (DatasetName::Mnist, 0.1307, 0.3081),
        (DatasetName::FashionMnist, 0.2860, 0.3530),
    ] {
        let data = load(name);
        assert_eq!((data.train.len(), data.test.len()), (60_000, 10_000));
        assert_eq!(data.train.image_shape(), [1, 28, 28]);
        let (m, s) = data.train.channel_stats();
        assert!(
            (m[0] - mean).abs() < 5e-5 && (s[0] - std).abs() < 5e-5,
            "{name}: {m:?} {s:?}"
        );
        assert_eq!(data.test.class_counts(10).iter().sum::<i64>(), 10_000);
    }
}

#[test]
fn cifar10_jpeg_tarball_loads_balanced() {
    let data = load(DatasetName::Cifar10);
    assert_eq!((data.train.len(), data.test.len()), (50_000, 10_000));
    assert_eq!(data.train.class_counts(10), vec![5000; 10]);
    // The tarball groups images by class; any prefix must still be class-balanced.
    let prefix = |set: &wcmi::data::LabelledImages| {
        let first = set.labels.narrow(0, 0, 1000);
        (0..10)
            .map(|c| first.eq(c).sum(tch::Kind::Int64).int64_value(&[]))
            .collect::<Vec<_>>()
    };
    assert_eq!(prefix(&data.train), vec![100; 10]);
    assert_eq!(prefix(&data.test), vec![100; 10]);
    let (mean, _) = data.train.channel_stats();
    for (m, published) in mean.iter().zip([0.4914, 0.4822, 0.4465]) {
        assert!((m - published).abs() < 0.005, "{mean:?}");
    }
}

#[test]
fn supervised_training_learns_an_mnist_subset() {
    let data = load(DatasetName::Mnist);
    let dir = tempfile::tempdir().unwrap();
    let config = ClassifierConfig {
        run: RunSettings {
            epochs: 1,
            train_limit: Some(4000),
            lr: 1e-3,
            ..Default::default()
        },
        ..Default::default()
    };
    let outcome = classifier::train(&data, &config, dir.path(), false, tch::Device::Cpu).unwrap();
    assert!(
        outcome.best_score > 0.85,
        "validation accuracy {}",
        outcome.best_score
    );
    // A standard classifier has no robustness at the paper's ε = 0.3: AutoAttack (with fewer
    // Square queries, which only run on what survives the gradient attacks) breaks every
    // image, and nothing looks like masking.
    let loaded = checkpoint::load_model(&outcome.checkpoint, tch::Device::Cpu).unwrap();
    let model = loaded.network.classifier().unwrap();
    let first: Vec<i64> = (0..100).collect();
    let threat = DatasetName::Mnist.threat();
    let paper = wcmi::attack::AttackConfig::linf(threat.eps, threat.steps, threat.step_size);
    let suite = autoattack_suite(&paper, 100, 500);
    let report = cascade(model, &data.test, &first, 100, &suite).unwrap();
    assert!(report.natural_accuracy > 0.8, "{report:?}");
    assert!(report.worst_case_accuracy < 0.03, "{report:?}");
    let zero = masking::zero_gradient_images(model, &data.test, &first, 100).unwrap();
    let checks = MaskingChecks::new(zero, &report, None);
    assert!(checks.flags.is_empty(), "{:?}", checks.flags);
    assert_eq!(report.samples.len(), 100);
}
