//! The paper's result tables (SPEC §6): downstream accuracy in %, natural / adversarial under
//! the paper's PGD, for MLP and linear heads.
use super::grid::Representation;
use crate::data::DatasetName;
use crate::nn::HeadKind;
use crate::train::classifier::Training;

/// Natural and adversarial accuracy (%) of one paper cell.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PaperCell {
    pub natural: f64,
    pub adversarial: f64,
}

/// One table row: MLP (nat, adv), linear (nat, adv).
type Row = (Representation, Training, [f64; 4]);

const MNIST: [Row; 7] = [
    (
        Representation::Dim,
        Training::Standard,
        [96.96, 0.00, 84.88, 0.00],
    ),
    (
        Representation::Dim,
        Training::Adversarial,
        [44.99, 16.70, 11.35, 11.35],
    ),
    (
        Representation::WorstCase,
        Training::Standard,
        [96.67, 9.97, 82.10, 3.69],
    ),
    (
        Representation::WorstCase,
        Training::EarlyStop,
        [94.68, 12.79, 77.72, 4.73],
    ),
    (
        Representation::WorstCase,
        Training::Adversarial,
        [95.05, 60.64, 73.99, 30.55],
    ),
    (
        Representation::Supervised,
        Training::Standard,
        [99.13, 0.45, 99.13, 0.00],
    ),
    (
        Representation::Supervised,
        Training::Adversarial,
        [99.25, 95.73, 99.21, 95.29],
    ),
];

const FASHION_MNIST: [Row; 7] = [
    (
        Representation::Dim,
        Training::Standard,
        [89.58, 0.00, 85.93, 0.00],
    ),
    (
        Representation::Dim,
        Training::Adversarial,
        [48.61, 14.95, 10.00, 10.00],
    ),
    (
        Representation::WorstCase,
        Training::Standard,
        [90.45, 5.38, 87.37, 18.20],
    ),
    (
        Representation::WorstCase,
        Training::EarlyStop,
        [81.66, 29.71, 86.27, 23.40],
    ),
    (
        Representation::WorstCase,
        Training::Adversarial,
        [84.31, 70.44, 81.05, 61.33],
    ),
    (
        Representation::Supervised,
        Training::Standard,
        [92.09, 0.00, 85.93, 0.00],
    ),
    (
        Representation::Supervised,
        Training::Adversarial,
        [87.94, 77.59, 88.05, 77.15],
    ),
];

const CIFAR10: [Row; 7] = [
    (
        Representation::Dim,
        Training::Standard,
        [58.77, 0.22, 47.01, 0.15],
    ),
    (
        Representation::Dim,
        Training::Adversarial,
        [29.75, 15.08, 22.79, 10.28],
    ),
    (
        Representation::WorstCase,
        Training::Standard,
        [62.54, 14.06, 50.29, 10.98],
    ),
    (
        Representation::WorstCase,
        Training::EarlyStop,
        [51.59, 27.53, 48.55, 13.52],
    ),
    (
        Representation::WorstCase,
        Training::Adversarial,
        [52.34, 31.52, 43.55, 25.15],
    ),
    (
        Representation::Supervised,
        Training::Standard,
        [86.33, 0.07, 86.36, 0.02],
    ),
    (
        Representation::Supervised,
        Training::Adversarial,
        [70.71, 40.50, 72.44, 39.98],
    ),
];

/// The paper's number for a cell, when the paper reports one (it has no E.S. row for DIM).
pub fn paper_cell(
    dataset: DatasetName,
    representation: Representation,
    training: Training,
    head: HeadKind,
) -> Option<PaperCell> {
    let table: &[Row] = match dataset {
        DatasetName::Mnist => &MNIST,
        DatasetName::FashionMnist => &FASHION_MNIST,
        DatasetName::Cifar10 => &CIFAR10,
    };
    let (_, _, v) = table
        .iter()
        .find(|(r, t, _)| *r == representation && *t == training)?;
    let [natural, adversarial] = match head {
        HeadKind::Mlp => [v[0], v[1]],
        HeadKind::Linear => [v[2], v[3]],
    };
    Some(PaperCell {
        natural,
        adversarial,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_the_papers_headline_cells() {
        let wc = paper_cell(
            DatasetName::Mnist,
            Representation::WorstCase,
            Training::Adversarial,
            HeadKind::Mlp,
        )
        .unwrap();
        assert_eq!((wc.natural, wc.adversarial), (95.05, 60.64));
        let linear = paper_cell(
            DatasetName::Cifar10,
            Representation::Supervised,
            Training::Adversarial,
            HeadKind::Linear,
        )
        .unwrap();
        assert_eq!(linear.adversarial, 39.98);
        assert!(paper_cell(
            DatasetName::FashionMnist,
            Representation::Dim,
            Training::EarlyStop,
            HeadKind::Mlp
        )
        .is_none());
    }
}
