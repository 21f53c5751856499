//! `wcmi data fetch`: downloads the official files of a dataset and verifies them against
//! their pinned checksums ([`super::official`]).
use super::official::{hex_md5, idx_files, verify_pinned, CIFAR10_MD5, CIFAR10_URL};
use super::DatasetName;
use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

fn download(url: &str) -> Result<Vec<u8>> {
    eprintln!("downloading {url}");
    let mut response = ureq::get(url)
        .call()
        .map_err(|e| Error::data(PathBuf::from(url), format!("download failed: {e}")))?;
    let mut bytes = Vec::new();
    response
        .body_mut()
        .as_reader()
        .read_to_end(&mut bytes)
        .map_err(|e| Error::data(PathBuf::from(url), format!("download interrupted: {e}")))?;
    Ok(bytes)
}

/// Downloads the official files of `name` into `data_dir/<name>/`, verifying each one.
/// Files already present and valid are kept. Returns the folder.
pub fn fetch(name: DatasetName, data_dir: &Path) -> Result<PathBuf> {
    let folder = data_dir.join(name.folder());
    match name {
        DatasetName::Mnist | DatasetName::FashionMnist => {
            for file in idx_files(name) {
                let target = folder.join(format!("{}.gz", file.name));
                if target.is_file()
                    && super::idx::read_maybe_gzipped(&target)
                        .is_ok_and(|b| verify_pinned(&target, &b).is_ok())
                {
                    continue;
                }
                let gz = download(file.url)?;
                let mut raw = Vec::new();
                flate2::read::GzDecoder::new(gz.as_slice())
                    .read_to_end(&mut raw)
                    .map_err(|e| {
                        Error::data(&target, format!("downloaded file is corrupt: {e}"))
                    })?;
                verify_pinned(&target, &raw)?;
                write_atomic(&target, &gz)?;
            }
        }
        DatasetName::Cifar10 => {
            let target = folder.join(super::cifar::BINARY_FOLDER);
            if super::cifar::binary_files(&target)
                .iter()
                .all(|p| p.is_file())
            {
                return Ok(folder);
            }
            let tarball = download(CIFAR10_URL)?;
            let got = hex_md5(&tarball);
            if got != CIFAR10_MD5 {
                return Err(Error::data(
                    PathBuf::from(CIFAR10_URL),
                    format!("MD5 mismatch: expected {CIFAR10_MD5}, got {got}"),
                ));
            }
            super::cifar::extract_binary_tarball(&tarball, &target)?;
        }
    }
    Ok(folder)
}
