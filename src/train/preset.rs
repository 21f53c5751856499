//! Presets: coherent sets of epochs, critic width, training PGD steps and data size.
//! Explicit flags override them; evaluation always uses the dataset's PGD of SPEC §5.
use crate::mi::Bound;
use crate::nn::critic::CriticKind;
use crate::precision::Precision;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// Minutes on a laptop: a smoke test of the whole pipeline, not a result.
    Quick,
    /// One trial of the MNIST table in 1 h 33 min on 2 cores of an AMD Zen 4 with bf16 training
    /// (README, "One whole `cpu` trial").
    Cpu,
    /// `wcmi demo`'s budget: the headline comparison in about 10 minutes on 2 CPU cores (10 min
    /// 37 s on an AMD EPYC Zen 3, the slowest measured).
    Demo,
    /// SPEC §5 as printed (300 epochs, critic width 2048), for a GPU.
    Paper,
}

impl Preset {
    /// Its name in flags, JSON and folder names.
    pub fn name(self) -> &'static str {
        match self {
            Self::Quick => "quick",
            Self::Cpu => "cpu",
            Self::Demo => "demo",
            Self::Paper => "paper",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PresetSettings {
    pub encoder_epochs: usize,
    pub head_epochs: usize,
    pub supervised_epochs: usize,
    pub critic_width: i64,
    /// The MI bound the encoders maximise (the paper: DV; absent in older configs).
    #[serde(default = "paper_bound")]
    pub encoder_bound: Bound,
    /// The critic of the encoder objective (the paper: local; absent in older configs).
    #[serde(default)]
    pub encoder_critic: CriticKind,
    /// PGD steps of training attacks (adversarial heads and baselines, and the worst-case
    /// objective when `encoder_pgd` says so); `None` keeps the dataset's. The step size is
    /// raised to 2.5·ε/steps when fewer steps are used, so that PGD can still cross the ball.
    pub train_pgd_steps: Option<usize>,
    /// The worst-case objective's PGD (absent in older configs: the training PGD from the image).
    #[serde(default)]
    pub encoder_pgd: EncoderPgd,
    /// Training examples used (`None`: all).
    pub train_limit: Option<usize>,
    /// Adam learning rate: SPEC §5's 1e-4 over 300 epochs; 1e-3 where a preset has far fewer steps.
    pub lr: f64,
    /// Test images of the natural and paper-PGD evaluation (`None`: all).
    pub eval_limit: Option<usize>,
    /// Test images of the strong evaluation (0: none).
    pub strong_limit: usize,
    /// Whether each classifier is also attacked by AutoAttack on the strong evaluation's images
    /// (absent in older configs: yes). The demo leaves it to `wcmi evaluate` to stay in budget.
    #[serde(default = "yes")]
    pub autoattack: bool,
    /// Epochs of the critic that estimates normal and worst-case MI.
    pub mi_epochs: usize,
    /// Training images the MI critic sees.
    pub mi_train_limit: usize,
    /// Held-out test batches averaged by each MI estimate.
    pub mi_test_batches: usize,
    /// Arithmetic of every training step, encoders' and classifiers' (evaluations and MI
    /// estimates stay f32). f32 in every preset: bf16 training steps are about twice as fast on
    /// a Zen 4 but slower on an Intel Xeon with AVX512-BF16 and no AMX, and its effect on the
    /// cells is measured for one seed on one CPU kind (README, "Speed against the PyTorch
    /// peer"); absent in older configs: f32.
    #[serde(default, skip_serializing_if = "Precision::is_f32")]
    pub precision: Precision,
}

/// Which PGD the worst-case objective maximises MI against (SPEC §5 trains it with the dataset's
/// PGD). At the `cpu` preset the coarse 5-step PGD from the image gave robust encoders for some
/// seeds and broken ones for others; the dataset's 10 steps of 0.1 from a random start gave a
/// robust encoder in each of the four draws measured (README, issue 13).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EncoderPgd {
    /// The preset's training PGD (`train_pgd_steps`) from the image, as the paper's code starts it.
    #[default]
    Training,
    /// The dataset's PGD with all its steps, from a random point of the ball.
    Dataset,
}

impl PresetSettings {
    /// PGD steps of the worst-case objective (`None`: the dataset's).
    pub fn encoder_pgd_steps(&self) -> Option<usize> {
        match self.encoder_pgd {
            EncoderPgd::Training => self.train_pgd_steps,
            EncoderPgd::Dataset => None,
        }
    }

    /// Whether the worst-case objective's PGD starts at a random point of the ball.
    pub fn encoder_random_start(&self) -> bool {
        self.encoder_pgd == EncoderPgd::Dataset
    }
}

fn paper_bound() -> Bound {
    Bound::Dv
}

fn yes() -> bool {
    true
}

impl Preset {
    pub fn settings(self) -> PresetSettings {
        match self {
            Preset::Quick => PresetSettings {
                encoder_epochs: 1,
                head_epochs: 1,
                supervised_epochs: 1,
                critic_width: 64,
                encoder_bound: Bound::Infonce,
                encoder_critic: CriticKind::GlobalCosine,
                train_pgd_steps: Some(2),
                encoder_pgd: EncoderPgd::Training,
                train_limit: Some(2_000),
                lr: 1e-3,
                eval_limit: Some(1_000),
                strong_limit: 200,
                autoattack: true,
                mi_epochs: 2,
                mi_train_limit: 2_000,
                mi_test_batches: 4,
                precision: Precision::F32,
            },
            Preset::Cpu => PresetSettings {
                encoder_epochs: 10,
                head_epochs: 10,
                supervised_epochs: 10,
                critic_width: 256,
                encoder_bound: Bound::Infonce,
                encoder_critic: CriticKind::GlobalCosine,
                train_pgd_steps: Some(5),
                encoder_pgd: EncoderPgd::Dataset,
                train_limit: Some(20_000),
                lr: 1e-3,
                eval_limit: None,
                // AutoAttack on 1,000 images of each robust cell was most of a trial's time
                // (README, "One whole `cpu` trial"); on 500 the binomial standard error at 70 %
                // is 2.0 points against 1.4, below the spread over seeds (issue 16).
                strong_limit: 500,
                autoattack: true,
                mi_epochs: 3,
                mi_train_limit: 5_000,
                mi_test_batches: 20,
                precision: Precision::F32,
            },
            Preset::Demo => PresetSettings {
                encoder_epochs: 3,
                head_epochs: 3,
                supervised_epochs: 3,
                train_limit: Some(10_000),
                eval_limit: Some(1_000),
                strong_limit: 100,
                autoattack: false,
                mi_epochs: 2,
                mi_train_limit: 2_500,
                mi_test_batches: 8,
                // The demo's measured budget: the 5-step PGD takes about half the time.
                encoder_pgd: EncoderPgd::Training,
                ..Preset::Cpu.settings()
            },
            Preset::Paper => PresetSettings {
                encoder_epochs: 300,
                head_epochs: 300,
                supervised_epochs: 300,
                critic_width: 2048,
                encoder_bound: Bound::Dv,
                encoder_critic: CriticKind::Local,
                train_pgd_steps: None,
                encoder_pgd: EncoderPgd::Training,
                train_limit: None,
                lr: 1e-4,
                eval_limit: None,
                strong_limit: 10_000,
                autoattack: true,
                mi_epochs: 20,
                mi_train_limit: 54_000,
                mi_test_batches: 40,
                precision: Precision::F32,
            },
        }
    }
}

/// The training PGD for a preset: the dataset's attack with fewer steps when the preset asks.
pub fn training_attack(
    attack: crate::attack::AttackConfig,
    steps: Option<usize>,
) -> crate::attack::AttackConfig {
    match steps {
        Some(steps) if steps < attack.steps => crate::attack::AttackConfig {
            steps,
            step_size: attack.step_size.max(2.5 * attack.eps / steps as f64),
            ..attack
        },
        _ => attack,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attack::AttackConfig;

    #[test]
    fn fewer_training_steps_get_a_larger_step_size() {
        let paper = AttackConfig::linf(0.3, 10, 0.1);
        let fast = training_attack(paper, Some(5));
        assert_eq!((fast.steps, fast.step_size), (5, 0.15));
        assert_eq!(training_attack(paper, None), paper);
        assert_eq!(training_attack(paper, Some(20)), paper);
    }

    #[test]
    fn the_cpu_preset_trains_the_worst_case_objective_with_the_datasets_pgd_from_a_random_start() {
        let cpu = Preset::Cpu.settings();
        assert_eq!(cpu.encoder_pgd_steps(), None);
        assert!(cpu.encoder_random_start());
        // Heads and baselines keep the 5 coarse steps.
        assert_eq!(cpu.train_pgd_steps, Some(5));
        for preset in [Preset::Quick, Preset::Demo, Preset::Paper] {
            let settings = preset.settings();
            assert_eq!(settings.encoder_pgd_steps(), settings.train_pgd_steps);
            assert!(!settings.encoder_random_start());
        }
    }

    #[test]
    fn an_older_config_without_the_encoder_pgd_or_precision_reads_as_the_training_pgd_in_f32() {
        let mut json = serde_json::to_value(Preset::Cpu.settings()).unwrap();
        assert!(json.get("precision").is_none(), "f32 is left out: {json}");
        json.as_object_mut().unwrap().remove("encoder_pgd");
        let older: PresetSettings = serde_json::from_value(json).unwrap();
        assert_eq!(older.precision, Precision::F32);
        assert_eq!(older.encoder_pgd_steps(), Some(5));
        assert!(!older.encoder_random_start());
    }

    #[test]
    fn a_preset_has_one_name_in_flags_json_and_folders() {
        use clap::ValueEnum;
        for preset in Preset::value_variants() {
            assert_eq!(serde_json::to_value(preset).unwrap(), preset.name());
            assert_eq!(
                preset.to_possible_value().unwrap().get_name(),
                preset.name()
            );
        }
    }
}
