//! The official files of each dataset in the catalogue and their pinned checksums.
//!
//! IDX files are pinned by the SHA-256 of their *uncompressed* content (shared/data/README.md),
//! so a plain or a gzip-compressed copy verifies alike. The CIFAR-10 site publishes only an MD5 of
//! its binary tarball, which is what we pin for it.
use super::DatasetName;
use crate::error::{Error, Result};
use md5::Md5;
use sha2::{Digest, Sha256};
use std::path::Path;

/// One official IDX file: its name, where it is served, and the SHA-256 of its uncompressed bytes.
pub struct IdxFile {
    pub name: &'static str,
    pub url: &'static str,
    pub sha256: &'static str,
}

const MNIST: [IdxFile; 4] = [
    IdxFile {
        name: "train-images-idx3-ubyte",
        url: "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz",
        sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    },
    IdxFile {
        name: "train-labels-idx1-ubyte",
        url: "https://ossci-datasets.s3.amazonaws.com/mnist/train-labels-idx1-ubyte.gz",
        sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    },
    IdxFile {
        name: "t10k-images-idx3-ubyte",
        url: "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-images-idx3-ubyte.gz",
        sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    },
    IdxFile {
        name: "t10k-labels-idx1-ubyte",
        url: "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz",
        sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
];

const FASHION_MNIST: [IdxFile; 4] = [
    IdxFile {
        name: "train-images-idx3-ubyte",
        url:
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-images-idx3-ubyte.gz",
        sha256: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    },
    IdxFile {
        name: "train-labels-idx1-ubyte",
        url:
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-labels-idx1-ubyte.gz",
        sha256: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    },
    IdxFile {
        name: "t10k-images-idx3-ubyte",
        url: "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/t10k-images-idx3-ubyte.gz",
        sha256: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    },
    IdxFile {
        name: "t10k-labels-idx1-ubyte",
        url: "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/t10k-labels-idx1-ubyte.gz",
        sha256: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
];

pub const CIFAR10_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
pub const CIFAR10_MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";

pub fn idx_files(name: DatasetName) -> &'static [IdxFile] {
    match name {
        DatasetName::Mnist => &MNIST,
        DatasetName::FashionMnist => &FASHION_MNIST,
        DatasetName::Cifar10 => &[],
    }
}

pub fn hex_sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The pinned SHA-256 for a file at `path`, when its folder and name are an official pair.
fn pinned_sha256(path: &Path) -> Option<&'static str> {
    let folder = path.parent()?.file_name()?.to_str()?;
    let dataset: DatasetName = folder.parse().ok()?;
    let file = path.file_name()?.to_str()?;
    let file = file.strip_suffix(".gz").unwrap_or(file);
    idx_files(dataset)
        .iter()
        .find(|f| f.name == file)
        .map(|f| f.sha256)
}

/// Fails loudly when an official file's uncompressed bytes differ from the published release.
pub fn verify_pinned(path: &Path, uncompressed: &[u8]) -> Result<()> {
    let Some(expected) = pinned_sha256(path) else {
        return Ok(());
    };
    let got = hex_sha256(uncompressed);
    if got != expected {
        return Err(Error::data(
            path,
            format!(
                "SHA-256 mismatch: expected {expected}, got {got}; the file is corrupt or not \
                 the official release"
            ),
        ));
    }
    Ok(())
}

/// The MD5 of the CIFAR-10 binary tarball, as its site publishes it.
pub fn hex_md5(bytes: &[u8]) -> String {
    hex(&Md5::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_names_are_pinned_and_others_are_not() {
        let p = Path::new("/d/mnist/train-images-idx3-ubyte.gz");
        assert_eq!(pinned_sha256(p), Some(MNIST[0].sha256));
        let e = verify_pinned(p, b"not mnist").unwrap_err().to_string();
        assert!(
            e.contains("SHA-256 mismatch") && e.contains(MNIST[0].sha256),
            "{e}"
        );
        assert!(verify_pinned(Path::new("/d/mine/train-images-idx3-ubyte"), b"x").is_ok());
        assert_eq!(
            hex_sha256(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
