//! The datasets wcmi knows by name, with their shapes and the paper's threat settings (SPEC §5).
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetName {
    Mnist,
    FashionMnist,
    Cifar10,
}

/// The ℓ∞ threat of SPEC §5: radius, PGD steps and step size.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThreatSettings {
    pub eps: f64,
    pub steps: usize,
    pub step_size: f64,
}

impl DatasetName {
    pub const ALL: [DatasetName; 3] = [
        DatasetName::Mnist,
        DatasetName::FashionMnist,
        DatasetName::Cifar10,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DatasetName::Mnist => "mnist",
            DatasetName::FashionMnist => "fashion-mnist",
            DatasetName::Cifar10 => "cifar10",
        }
    }

    /// Folder under the data directory.
    pub fn folder(self) -> &'static str {
        self.as_str()
    }

    /// (channels, height, width).
    pub fn image_shape(self) -> [i64; 3] {
        match self {
            DatasetName::Mnist | DatasetName::FashionMnist => [1, 28, 28],
            DatasetName::Cifar10 => [3, 32, 32],
        }
    }

    pub fn num_classes(self) -> i64 {
        self.classes().len() as i64
    }

    /// The class names, in label order.
    pub fn classes(self) -> Vec<String> {
        match self {
            DatasetName::Mnist => (0..10).map(|d| d.to_string()).collect(),
            DatasetName::FashionMnist => [
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ]
            .map(String::from)
            .to_vec(),
            DatasetName::Cifar10 => super::cifar::CLASSES.map(String::from).to_vec(),
        }
    }

    pub fn threat(self) -> ThreatSettings {
        match self {
            DatasetName::Mnist => ThreatSettings {
                eps: 0.3,
                steps: 10,
                step_size: 0.1,
            },
            DatasetName::FashionMnist => ThreatSettings {
                eps: 0.1,
                steps: 10,
                step_size: 0.02,
            },
            DatasetName::Cifar10 => ThreatSettings {
                eps: 8.0 / 255.0,
                steps: 7,
                step_size: 0.01,
            },
        }
    }

    /// Random crop (padding 4) and horizontal flip during training: CIFAR-10 only (SPEC §5).
    pub fn augments(self) -> bool {
        self == DatasetName::Cifar10
    }
}

impl fmt::Display for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DatasetName {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let wanted = s.to_ascii_lowercase().replace('_', "-");
        DatasetName::ALL
            .into_iter()
            .find(|d| d.as_str() == wanted || (wanted == "cifar-10" && *d == DatasetName::Cifar10))
            .ok_or_else(|| {
                format!("unknown dataset '{s}' (expected mnist, fashion-mnist or cifar10)")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_rejected() {
        for d in DatasetName::ALL {
            assert_eq!(d.as_str().parse::<DatasetName>().unwrap(), d);
        }
        assert_eq!(
            "CIFAR-10".parse::<DatasetName>().unwrap(),
            DatasetName::Cifar10
        );
        let err = "svhm".parse::<DatasetName>().unwrap_err();
        assert!(err.contains("unknown dataset 'svhm'"), "{err}");
    }
}
