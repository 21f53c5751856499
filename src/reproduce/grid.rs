//! The grid of SPEC §6: every model of the paper's tables, with its folder name and the
//! training settings a preset gives it.
use crate::attack::AttackConfig;
use crate::data::DatasetName;
use crate::nn::HeadKind;
use crate::train::classifier::{ClassifierConfig, Training};
use crate::train::encoder::{EncoderConfig, EncoderObjective};
use crate::train::preset::{training_attack, PresetSettings};
use crate::train::RunSettings;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Where a classifier's representation comes from: a label-free encoder, or end-to-end labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Representation {
    Dim,
    WorstCase,
    Supervised,
}

impl Representation {
    pub const ALL: [Representation; 3] = [Self::Dim, Self::WorstCase, Self::Supervised];

    pub fn name(self) -> &'static str {
        match self {
            Self::Dim => "dim",
            Self::WorstCase => "worst-case",
            Self::Supervised => "supervised",
        }
    }

    /// The row label of the paper's tables.
    pub fn label(self) -> &'static str {
        match self {
            Self::Dim => "standard MI (DIM)",
            Self::WorstCase => "worst-case MI",
            Self::Supervised => "supervised",
        }
    }

    /// The encoder objective, for the label-free representations.
    pub fn objective(self) -> Option<EncoderObjective> {
        match self {
            Self::Dim => Some(EncoderObjective::Dim),
            Self::WorstCase => Some(EncoderObjective::WorstCase),
            Self::Supervised => None,
        }
    }
}

/// One trained classifier of the grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    pub representation: Representation,
    pub training: Training,
    pub head: HeadKind,
}

/// Which of the grid's models a reproduction trains.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// Every model of the paper's tables.
    #[default]
    Grid,
    /// The paper's headline comparison (claims 1 and 2 of SPEC §6) and nothing else: the
    /// robust MLP head on each encoder, DIM's standard MLP head (the natural accuracy a DIM
    /// representation supports) and both encoders' vulnerability. `wcmi demo` runs it.
    Headline,
}

impl Scope {
    pub fn is_grid(&self) -> bool {
        *self == Self::Grid
    }

    /// The cell whose training run gives `cell`'s, when the scope trains both and they differ
    /// only in the epoch they keep: a label-free standard head is the last epoch of its E.S.
    /// twin's run (issue 16). Not in the headline scope, whose standard head has no twin to
    /// share with and would pay the twin's validation attack alone.
    pub fn trained_with(self, cell: &Cell) -> Option<Cell> {
        let twin = Cell {
            training: Training::EarlyStop,
            ..*cell
        };
        (cell.training == Training::Standard && self.cells().contains(&twin)).then_some(twin)
    }

    /// The classifiers the scope trains, the headline's first.
    pub fn cells(self) -> Vec<Cell> {
        let headline = headline_cells();
        match self {
            Self::Headline => headline.to_vec(),
            Self::Grid => headline
                .into_iter()
                .chain(cells().into_iter().filter(|c| !headline.contains(c)))
                .collect(),
        }
    }
}

/// The headline comparison's classifiers, in the order they run: the worst-case encoder's robust
/// MLP head, DIM's, and DIM's standard MLP head.
pub fn headline_cells() -> [Cell; 3] {
    let mlp = |representation, training| Cell {
        representation,
        training,
        head: HeadKind::Mlp,
    };
    [
        mlp(Representation::WorstCase, Training::Adversarial),
        mlp(Representation::Dim, Training::Adversarial),
        mlp(Representation::Dim, Training::Standard),
    ]
}

/// The rows of the tables, in the paper's order (supervised models have no E.S. row).
pub fn rows() -> Vec<(Representation, Training)> {
    let mut rows = Vec::new();
    for representation in Representation::ALL {
        for training in [
            Training::Standard,
            Training::EarlyStop,
            Training::Adversarial,
        ] {
            if !(representation == Representation::Supervised && training == Training::EarlyStop) {
                rows.push((representation, training));
            }
        }
    }
    rows
}

/// Every classifier of the grid: each row with an MLP and a linear head.
pub fn cells() -> Vec<Cell> {
    rows()
        .into_iter()
        .flat_map(|(representation, training)| {
            [HeadKind::Mlp, HeadKind::Linear].map(|head| Cell {
                representation,
                training,
                head,
            })
        })
        .collect()
}

impl Cell {
    /// The folder of the cell within a trial, e.g. `worst-case-mlp-adversarial`.
    pub fn name(&self) -> String {
        format!(
            "{}-{}-{}",
            self.representation.name(),
            self.head.name(),
            self.training.name()
        )
    }

    /// The cell's training settings; `encoder` is the frozen encoder of label-free cells.
    pub fn config(&self, grid: &GridSettings, encoder: Option<PathBuf>) -> ClassifierConfig {
        let s = &grid.preset;
        let run = RunSettings {
            epochs: if encoder.is_none() {
                s.supervised_epochs
            } else {
                s.head_epochs
            },
            lr: s.lr,
            train_limit: s.train_limit,
            seed: grid.seed,
            precision: s.precision,
            ..RunSettings::default()
        };
        ClassifierConfig::for_training(
            run,
            self.training,
            self.head,
            encoder,
            grid.attack,
            grid.training_attack(),
        )
    }
}

/// What every model of one trial shares.
#[derive(Clone, Debug)]
pub struct GridSettings {
    pub dataset: DatasetName,
    pub preset: PresetSettings,
    /// The paper's PGD for the dataset (SPEC §5): evaluation and model selection.
    pub attack: AttackConfig,
    pub seed: u64,
}

impl GridSettings {
    /// The training PGD: the paper's, with the preset's step count, from a random start.
    pub fn training_attack(&self) -> AttackConfig {
        training_attack(
            AttackConfig {
                random_start: true,
                ..self.attack
            },
            self.preset.train_pgd_steps,
        )
    }

    /// The settings of a label-free encoder.
    pub fn encoder_config(&self, objective: EncoderObjective) -> EncoderConfig {
        let attack = training_attack(
            AttackConfig {
                random_start: self.preset.encoder_random_start(),
                ..self.attack
            },
            self.preset.encoder_pgd_steps(),
        );
        EncoderConfig::from_preset(objective, &self.preset, attack, self.seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn the_grid_has_the_papers_sixteen_models_with_distinct_folders() {
        let cells = cells();
        assert_eq!(rows().len(), 8);
        assert_eq!(cells.len(), 16);
        let names: HashSet<String> = cells.iter().map(Cell::name).collect();
        assert_eq!(names.len(), 16);
        assert!(names.contains("worst-case-mlp-adversarial"));
        assert!(!names.contains("supervised-mlp-standard-es"));
    }

    #[test]
    fn the_grid_trains_each_label_free_standard_head_with_its_e_s_twin() {
        let mut shared: Vec<(String, String)> = Scope::Grid
            .cells()
            .iter()
            .filter_map(|c| Some((c.name(), Scope::Grid.trained_with(c)?.name())))
            .collect();
        let mut expected: Vec<(String, String)> = ["dim", "worst-case"]
            .iter()
            .flat_map(|r| ["mlp", "linear"].map(|h| format!("{r}-{h}-standard")))
            .map(|name| (name.clone(), format!("{name}-es")))
            .collect();
        shared.sort();
        expected.sort();
        assert_eq!(shared, expected);
        let headline = Scope::Headline.cells();
        assert!(headline
            .iter()
            .all(|c| Scope::Headline.trained_with(c).is_none()));
    }

    #[test]
    fn the_cpu_grid_trains_the_worst_case_encoder_with_the_papers_pgd_and_heads_with_five_steps() {
        let grid = GridSettings {
            dataset: DatasetName::Mnist,
            preset: crate::train::preset::Preset::Cpu.settings(),
            attack: AttackConfig::linf(0.3, 10, 0.1),
            seed: 0,
        };
        let encoder = grid.encoder_config(EncoderObjective::WorstCase).attack;
        assert_eq!((encoder.steps, encoder.step_size), (10, 0.1));
        assert!(encoder.random_start);
        let heads = grid.training_attack();
        assert_eq!((heads.steps, heads.step_size), (5, 0.15));
        assert!(heads.random_start);
    }

    #[test]
    fn the_presets_arithmetic_reaches_every_encoder_and_classifier_run() {
        use crate::precision::Precision;
        let mut preset = crate::train::preset::Preset::Cpu.settings();
        preset.precision = Precision::Bf16;
        let grid = GridSettings {
            dataset: DatasetName::Mnist,
            preset,
            attack: AttackConfig::linf(0.3, 10, 0.1),
            seed: 0,
        };
        for objective in [EncoderObjective::Dim, EncoderObjective::WorstCase] {
            assert_eq!(
                grid.encoder_config(objective).run.precision,
                Precision::Bf16
            );
        }
        for cell in cells() {
            let encoder = cell.representation.objective().map(|_| PathBuf::from("e"));
            assert_eq!(cell.config(&grid, encoder).run.precision, Precision::Bf16);
        }
    }

    #[test]
    fn the_grid_scope_trains_every_cell_once_headline_first() {
        let grid = Scope::Grid.cells();
        assert_eq!(grid.len(), cells().len());
        assert!(cells().iter().all(|c| grid.contains(c)));
        assert_eq!(grid[..3], headline_cells());
        let headline: Vec<String> = Scope::Headline.cells().iter().map(Cell::name).collect();
        assert_eq!(
            headline,
            [
                "worst-case-mlp-adversarial",
                "dim-mlp-adversarial",
                "dim-mlp-standard"
            ]
        );
    }
}
