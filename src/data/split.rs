//! The validation split: a seeded fraction of the *training* set, never the test set (SPEC §4).
use crate::error::{Error, Result};
use crate::seed::{self, Stream};
use rand::seq::SliceRandom;

/// Indices into the training set.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainValidation {
    pub train: Vec<i64>,
    pub validation: Vec<i64>,
}

/// Holds out `fraction` of `n` training examples, chosen by `seed`; both parts come back sorted.
pub fn train_validation(n: i64, fraction: f64, seed: u64) -> Result<TrainValidation> {
    if !(0.0..1.0).contains(&fraction) {
        return Err(Error::invalid(
            "val_fraction",
            format!("must be in [0, 1), got {fraction}"),
        ));
    }
    let mut all: Vec<i64> = (0..n).collect();
    all.shuffle(&mut seed::rng(seed, Stream::Split, 0));
    let n_val = (n as f64 * fraction).round() as usize;
    let mut validation = all[..n_val].to_vec();
    let mut train = all[n_val..].to_vec();
    if train.is_empty() {
        return Err(Error::invalid(
            "val_fraction",
            format!("{fraction} leaves no training examples out of {n}"),
        ));
    }
    validation.sort_unstable();
    train.sort_unstable();
    Ok(TrainValidation { train, validation })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_the_indices_reproducibly() {
        let s = train_validation(1000, 0.1, 3).unwrap();
        assert_eq!(s.validation.len(), 100);
        assert_eq!(s.train.len(), 900);
        let mut all: Vec<i64> = s.train.iter().chain(&s.validation).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        assert_eq!(s, train_validation(1000, 0.1, 3).unwrap());
        assert_ne!(s, train_validation(1000, 0.1, 4).unwrap());
        assert!(train_validation(10, 1.0, 0)
            .unwrap_err()
            .to_string()
            .contains("val_fraction"));
        assert!(train_validation(10, -0.1, 0).is_err());
    }
}
