//! Encoder learning raises the MI estimate; a head trained on it leaves the encoder untouched.
use tch::Device;
use wcmi::attack::AttackConfig;
use wcmi::checkpoint;
use wcmi::data::{synthetic, Dataset, DatasetName};
use wcmi::mi::worst_case::AttackGradient;
use wcmi::mi::Bound;
use wcmi::nn::critic::CriticKind;
use wcmi::nn::HeadKind;
use wcmi::train::classifier::{self, ClassifierConfig, Selection};
use wcmi::train::encoder::{self, EncoderConfig, EncoderEpoch, EncoderObjective};
use wcmi::train::RunSettings;

fn tiny() -> Dataset {
    Dataset::named(
        DatasetName::Mnist,
        synthetic::class_templates(600, [1, 28, 28], 10, 0.2, 5),
        synthetic::class_templates(100, [1, 28, 28], 10, 0.2, 6),
    )
}

fn encoder_config(objective: EncoderObjective, critic: CriticKind, bound: Bound) -> EncoderConfig {
    EncoderConfig {
        objective,
        bound,
        critic_width: 16,
        critic,
        critic_temperature: None,
        run: RunSettings {
            epochs: 4,
            batch_size: 64,
            lr: 1e-3,
            val_fraction: 0.25,
            seed: 2,
            ..Default::default()
        },
        attack: AttackConfig::linf(0.1, 2, 0.05),
        attack_gradient: AttackGradient::Representation,
        val_batches: 2,
    }
}

fn log(dir: &std::path::Path) -> Vec<EncoderEpoch> {
    std::fs::read_to_string(dir.join("log.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn both_objectives_raise_the_mi_estimate_and_heads_keep_the_encoder_frozen() {
    tch::set_num_threads(2);
    let data = tiny();
    let dir = tempfile::tempdir().unwrap();
    for (objective, critic, bound) in [
        (EncoderObjective::Dim, CriticKind::Local, Bound::Jsd),
        (EncoderObjective::WorstCase, CriticKind::Local, Bound::Jsd),
        (
            EncoderObjective::WorstCase,
            CriticKind::GlobalCosine,
            Bound::Infonce,
        ),
    ] {
        let out = dir.path().join(format!("{objective:?}-{critic:?}"));
        let config = encoder_config(objective, critic, bound);
        encoder::train(&data, &config, &out, false, Device::Cpu).unwrap();
        let epochs = log(&out);
        assert_eq!(epochs.len(), 4);
        assert!(
            epochs[3].train_mi > epochs[0].train_mi,
            "{objective:?}, {critic:?}: {epochs:?}"
        );
        // Worst-case Î never exceeds the normal one on the same validation batches.
        for e in &epochs {
            let (normal, worst) = (e.val_mi.unwrap(), e.val_worst_case_mi.unwrap());
            assert!(
                worst <= normal + 1e-6 && e.val_worst_case_mi_ci95.is_some(),
                "{epochs:?}"
            );
        }
    }

    let encoder_path = dir.path().join("WorstCase-GlobalCosine/model.safetensors");
    let head = ClassifierConfig {
        run: RunSettings {
            epochs: 2,
            lr: 1e-3,
            ..Default::default()
        },
        head: HeadKind::Linear,
        encoder: Some(encoder_path.clone()),
        adversarial: Some(AttackConfig::linf(0.1, 2, 0.05)),
        validation_attack: Some(AttackConfig::linf(0.1, 2, 0.05)),
        selection: Selection::Last,
    };
    let outcome =
        classifier::train(&data, &head, &dir.path().join("head"), false, Device::Cpu).unwrap();
    let (_, before) = checkpoint::read(&encoder_path).unwrap();
    let (_, after) = checkpoint::read(&outcome.checkpoint).unwrap();
    let encoder_tensors: Vec<_> = before
        .keys()
        .filter(|k| k.starts_with("encoder."))
        .collect();
    assert!(!encoder_tensors.is_empty());
    for name in encoder_tensors {
        assert!(
            before[name].equal(&after[name]),
            "{name} changed during head training"
        );
    }
    assert!(after.contains_key("head.fc.weight"));
}
