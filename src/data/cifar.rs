//! CIFAR-10, from its official binary batches or from the JPEG tarball of `shared/data`.
//!
//! Binary: records of 1 label byte + 3072 pixel bytes (channel-major 3×32×32) in
//! `data_batch_1.bin` … `data_batch_5.bin` and `test_batch.bin`. JPEG tarball:
//! `train/<class>/NNNN.jpg` and `test/<class>/NNNN.jpg`, an image folder in an archive, read as
//! [`image_folder`] reads one (round-robin over the classes, so that prefixes are balanced).
use super::image_folder::{self, assemble, interleave_classes, Entry, Format};
use super::{images_from_bytes, labels_from_bytes, LabelledImages};
use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::{Path, PathBuf};
use tch::Tensor;

pub const CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];
pub const BINARY_FOLDER: &str = "cifar-10-batches-bin";
pub const JPEG_TARBALL: &str = "cifar10-jpg.tar.gz";
const SIDE: usize = 32;
const PIXELS: usize = 3 * SIDE * SIDE;
const SHAPE: [i64; 3] = [3, SIDE as i64, SIDE as i64];
const RECORD: usize = 1 + PIXELS;
const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
const TEST_FILE: &str = "test_batch.bin";

/// The six official binary files in `dir`, training batches first.
pub fn binary_files(dir: &Path) -> Vec<PathBuf> {
    TRAIN_FILES
        .iter()
        .chain(std::iter::once(&TEST_FILE))
        .map(|f| dir.join(f))
        .collect()
}

/// Loads (train, test) from `folder`: the binary batches when present (in `folder` or its
/// `cifar-10-batches-bin/`), else the JPEG tarball.
pub fn load(folder: &Path) -> Result<(LabelledImages, LabelledImages)> {
    for dir in [folder.to_path_buf(), folder.join(BINARY_FOLDER)] {
        let files = binary_files(&dir);
        if files[0].is_file() {
            return Ok((read_binary(&files[..5])?, read_binary(&files[5..])?));
        }
    }
    let tarball = folder.join(JPEG_TARBALL);
    if tarball.is_file() {
        return read_jpeg_tarball(&tarball);
    }
    Err(Error::data(
        folder,
        format!("no CIFAR-10 files: expected {BINARY_FOLDER}/data_batch_1.bin … or {JPEG_TARBALL}"),
    ))
}

/// Reads and concatenates binary batch files.
pub fn read_binary(files: &[PathBuf]) -> Result<LabelledImages> {
    let mut labels = Vec::new();
    let mut pixels = Vec::new();
    for path in files {
        let bytes =
            std::fs::read(path).map_err(|e| Error::data(path, format!("cannot read: {e}")))?;
        if bytes.is_empty() || bytes.len() % RECORD != 0 {
            return Err(Error::data(
                path,
                format!(
                    "truncated or corrupt: {} bytes is not a whole number of {RECORD}-byte records",
                    bytes.len()
                ),
            ));
        }
        let file_labels: Vec<u8> = bytes.chunks_exact(RECORD).map(|r| r[0]).collect();
        // Checked per file, so that the error names the file and the record within it.
        labels.push(labels_from_bytes(path, &file_labels, 10)?);
        for record in bytes.chunks_exact(RECORD) {
            pixels.extend_from_slice(&record[1..]);
        }
    }
    let labels = Tensor::cat(&labels, 0);
    let n = labels.size()[0];
    Ok(LabelledImages::new(
        images_from_bytes(&pixels, [n, 3, SIDE as i64, SIDE as i64]),
        labels,
    ))
}

/// Reads `train/<class>/*.jpg` and `test/<class>/*.jpg` from the tarball, each image 32×32 RGB.
pub fn read_jpeg_tarball(tarball: &Path) -> Result<(LabelledImages, LabelledImages)> {
    let file = std::fs::File::open(tarball)
        .map_err(|e| Error::data(tarball, format!("cannot open: {e}")))?;
    let corrupt =
        |e: std::io::Error| Error::data(tarball, format!("truncated or corrupt tarball: {e}"));
    let mut archive = tar::Archive::new(GzDecoder::new(file));
    let mut entries = Vec::new();
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let path = entry.path().map_err(corrupt)?.into_owned();
        let parts: Vec<String> = path
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let [.., split, class, name] = parts.as_slice() else {
            continue;
        };
        if !name.ends_with(".jpg") || (split != "train" && split != "test") {
            continue;
        }
        let name = path.to_string_lossy().into_owned();
        let Some(class) = CLASSES.iter().position(|c| c == class) else {
            return Err(Error::data(
                tarball,
                format!("{name}: unknown class folder '{class}'"),
            ));
        };
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut bytes).map_err(corrupt)?;
        let image = image_folder::decode(&bytes, Format::Jpeg)
            .map_err(|problem| Error::data(tarball, format!("{name}: {problem}")))?;
        if image.shape != SHAPE {
            return Err(Error::data(
                tarball,
                format!(
                    "{name}: expected a 3×32×32 image, got {}",
                    image_folder::shape_text(image.shape)
                ),
            ));
        }
        entries.push(Entry {
            test: split == "test",
            class,
            name,
            image,
        });
    }
    interleave_classes(&mut entries);
    Ok((
        assemble(&entries, false, tarball)?,
        assemble(&entries, true, tarball)?,
    ))
}

/// Extracts the six binary batch files of the official tarball into `target`.
pub fn extract_binary_tarball(tarball: &[u8], target: &Path) -> Result<()> {
    let corrupt = |e: std::io::Error| Error::data(target, format!("corrupt CIFAR-10 tarball: {e}"));
    let mut archive = tar::Archive::new(GzDecoder::new(tarball));
    let wanted = binary_files(target);
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let name = entry
            .path()
            .map_err(corrupt)?
            .file_name()
            .map(|n| n.to_owned());
        if let Some(out) = wanted.iter().find(|w| w.file_name() == name.as_deref()) {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(corrupt)?;
            write_atomic(out, &bytes)?;
        }
    }
    match wanted.iter().find(|w| !w.is_file()) {
        Some(missing) => Err(Error::data(missing, "missing from the downloaded tarball")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_binary_records_channel_major() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = Vec::new();
        for label in [3u8, 7] {
            bytes.push(label);
            bytes.extend((0..PIXELS).map(|i| (i / 1024) as u8 * 100 + label));
        }
        let path = dir.path().join("b.bin");
        std::fs::write(&path, &bytes).unwrap();
        let set = read_binary(std::slice::from_ref(&path)).unwrap();
        assert_eq!(Vec::<i64>::try_from(&set.labels).unwrap(), vec![3, 7]);
        assert_eq!(set.images.int64_value(&[1, 2, 5, 5]), 207);
        assert_eq!(set.images.int64_value(&[0, 0, 0, 0]), 3);
        std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
        let e = read_binary(&[path]).unwrap_err().to_string();
        assert!(
            e.contains("b.bin") && e.contains("3073-byte records"),
            "{e}"
        );
    }

    #[test]
    fn a_bad_label_names_its_own_file_and_record() {
        let dir = tempfile::tempdir().unwrap();
        let record = |label: u8| {
            let mut r = vec![label];
            r.extend(std::iter::repeat_n(0u8, PIXELS));
            r
        };
        let first = dir.path().join("data_batch_1.bin");
        let third = dir.path().join("data_batch_3.bin");
        std::fs::write(&first, [record(1), record(2)].concat()).unwrap();
        std::fs::write(&third, [record(4), record(12)].concat()).unwrap();
        let e = read_binary(&[first.clone(), third])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("data_batch_3.bin") && e.contains("label 12 at index 1"),
            "{e}"
        );
        let set = read_binary(&[first.clone(), first]).unwrap();
        assert_eq!(Vec::<i64>::try_from(&set.labels).unwrap(), vec![1, 2, 1, 2]);
    }
}
