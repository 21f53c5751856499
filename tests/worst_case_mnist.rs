//! The worst-case MI estimator on a small trained MNIST encoder: no vulnerability without a
//! threat, and a vulnerability that grows with ε (within the estimates' intervals).
use std::path::Path;
use tch::{Device, Tensor};
use wcmi::attack::AttackConfig;
use wcmi::data::{Dataset, DatasetName};
use wcmi::mi::critic_training::CriticConfig;
use wcmi::mi::worst_case::{
    estimate_mi, AttackGradient, CriticSpec, MiProblem, RepresentationMiConfig,
};
use wcmi::mi::Bound;
use wcmi::train::classifier::{self, ClassifierConfig};
use wcmi::train::RunSettings;

#[test]
fn vulnerability_is_zero_at_eps_zero_and_grows_with_eps() {
    let data = Dataset::load(DatasetName::Mnist, Path::new("../shared/data")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let trained = ClassifierConfig {
        run: RunSettings {
            epochs: 1,
            train_limit: Some(3000),
            lr: 1e-3,
            ..Default::default()
        },
        ..Default::default()
    };
    let outcome = classifier::train(&data, &trained, dir.path(), false, Device::Cpu).unwrap();
    let loaded = wcmi::checkpoint::load_model(&outcome.checkpoint, Device::Cpu).unwrap();

    let representation = |x: &Tensor| loaded.network.layer("encoder", x).unwrap();
    let train_inputs = |index: &Tensor| data.train.batch(index).0;
    let test_inputs = |index: &Tensor| data.test.batch(index).0;
    let train: Vec<i64> = (3000..4024).collect();
    let test: Vec<i64> = (0..256).collect();
    let config = |attack: Option<AttackConfig>| RepresentationMiConfig {
        critic: CriticConfig {
            bound: Bound::Dv,
            epochs: 2,
            batch_size: 64,
            lr: 1e-3,
            test_batches: 4,
            seed: 1,
        },
        critic_spec: CriticSpec::Image {
            in_channels: 1,
            width: 32,
        },
        attack,
        attack_gradient: AttackGradient::Representation,
    };
    let problem = MiProblem {
        representation: &representation,
        representation_dim: 64,
        train_inputs: &train_inputs,
        train: &train,
        test_inputs: &test_inputs,
        test: &test,
    };
    let estimate = |attack| estimate_mi(&problem, &config(attack), Device::Cpu).unwrap();
    let normal = estimate(None);
    let vulnerability: Vec<(f64, f64, f64)> = [0.0, 0.05, 0.1, 0.2, 0.3]
        .iter()
        .map(|&eps| {
            let worst = estimate(Some(AttackConfig::linf(eps, 5, eps / 2.0 + 1e-3)));
            (eps, normal.mean - worst.mean, normal.ci95.hypot(worst.ci95))
        })
        .collect();
    eprintln!(
        "normal {:.3} ± {:.3}; (ε, RV, CI): {vulnerability:?}",
        normal.mean, normal.ci95
    );
    // Each estimate trains its own critic, so neighbouring ε can swap by noise (kernels differ
    // between CPUs): RV may fall between neighbours by at most their combined 95 % interval,
    // and must grow from the smallest to the largest ε beyond it.
    let (_, rv0, ci0) = vulnerability[0];
    assert!(rv0.abs() <= ci0, "RV at ε = 0 is {rv0} ± {ci0}");
    for pair in vulnerability[1..].windows(2) {
        let ((_, before, ci_before), (_, after, ci_after)) = (pair[0], pair[1]);
        assert!(
            after >= before - ci_before.hypot(ci_after),
            "RV fell beyond its interval from {:?} to {:?}",
            pair[0],
            pair[1]
        );
    }
    let ((_, small, ci_small), (_, large, ci_large)) = (vulnerability[1], vulnerability[4]);
    assert!(
        large - small > ci_small.hypot(ci_large),
        "RV did not grow from ε = 0.05 to 0.3: {vulnerability:?}"
    );
    assert!(
        vulnerability[4].1 > vulnerability[4].2,
        "RV at ε = 0.3 is not significant"
    );
}
