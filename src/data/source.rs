//! Where a measurement's images come from: a dataset wcmi knows by name, or a user's image
//! folder ([`super::image_folder`]). One command-line value names either: a known name is the
//! dataset, anything else a folder (`./mnist` for a folder that shares a dataset's name).
use super::{DatasetName, ThreatSettings};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataSource {
    Named(DatasetName),
    Folder(PathBuf),
}

impl DataSource {
    /// The dataset's name when it is a known one.
    pub fn named(&self) -> Option<DatasetName> {
        match self {
            DataSource::Named(name) => Some(*name),
            DataSource::Folder(_) => None,
        }
    }

    /// The paper's threat for a known dataset (SPEC §5); an image folder has none, so its
    /// radius and steps come from the user.
    pub fn threat(&self) -> Option<ThreatSettings> {
        self.named().map(DatasetName::threat)
    }

    /// Training-time augmentation (SPEC §5): a known dataset's; none for a folder.
    pub fn augments(&self) -> bool {
        self.named().is_some_and(DatasetName::augments)
    }

    /// A short name for file names and tables: the dataset's, or the folder's last component.
    pub fn slug(&self) -> String {
        match self {
            DataSource::Named(name) => name.as_str().to_string(),
            DataSource::Folder(dir) => dir
                .canonicalize()
                .unwrap_or_else(|_| dir.clone())
                .file_name()
                .map_or_else(
                    || "images".to_string(),
                    |n| n.to_string_lossy().into_owned(),
                ),
        }
    }
}

impl From<DatasetName> for DataSource {
    fn from(name: DatasetName) -> Self {
        DataSource::Named(name)
    }
}

impl fmt::Display for DataSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataSource::Named(name) => name.fmt(f),
            DataSource::Folder(dir) => write!(f, "image folder {}", dir.display()),
        }
    }
}

/// Results record a dataset by name and a folder by path.
impl Serialize for DataSource {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            DataSource::Named(name) => name.serialize(serializer),
            DataSource::Folder(dir) => dir.serialize(serializer),
        }
    }
}

/// A recorded folder is read back as a folder whether or not it still exists.
impl<'de> Deserialize<'de> for DataSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(match text.parse::<DatasetName>() {
            Ok(name) => DataSource::Named(name),
            Err(_) => DataSource::Folder(PathBuf::from(text)),
        })
    }
}

impl FromStr for DataSource {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(name) = s.parse::<DatasetName>() {
            return Ok(DataSource::Named(name));
        }
        let path = Path::new(s);
        if path.is_dir() || s.contains(std::path::MAIN_SEPARATOR) || s.contains('/') {
            return Ok(DataSource::Folder(path.to_path_buf()));
        }
        Err(format!(
            "unknown dataset '{s}' (expected mnist, fashion-mnist, cifar10 or the path of an \
             image folder)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_datasets_and_paths_are_folders() {
        assert_eq!(
            "fashion-mnist".parse::<DataSource>().unwrap(),
            DataSource::Named(DatasetName::FashionMnist)
        );
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("digits");
        std::fs::create_dir(&folder).unwrap();
        let source: DataSource = folder.to_str().unwrap().parse().unwrap();
        assert_eq!(source, DataSource::Folder(folder.clone()));
        assert_eq!(source.slug(), "digits");
        assert_eq!(source.threat(), None);
        assert!(!source.augments());
        assert_eq!(
            "./mnist".parse::<DataSource>().unwrap(),
            DataSource::Folder(PathBuf::from("./mnist"))
        );
        let e = "svhn".parse::<DataSource>().unwrap_err();
        assert!(e.contains("'svhn'") && e.contains("image folder"), "{e}");
        assert_eq!(
            serde_json::to_string(&DataSource::Named(DatasetName::Cifar10)).unwrap(),
            "\"cifar10\""
        );
        for source in [
            DataSource::Folder(PathBuf::from("a/b")),
            DataSource::Folder(PathBuf::from("gone")),
            DataSource::Named(DatasetName::Mnist),
        ] {
            let json = serde_json::to_string(&source).unwrap();
            assert_eq!(serde_json::from_str::<DataSource>(&json).unwrap(), source);
        }
        assert_eq!(
            serde_json::to_string(&DataSource::Folder(PathBuf::from("a/b"))).unwrap(),
            "\"a/b\""
        );
    }
}
