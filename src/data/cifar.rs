//! CIFAR-10, from its official binary batches or from the JPEG tarball of `shared/data`.
//!
//! Binary: records of 1 label byte + 3072 pixel bytes (channel-major 3×32×32) in
//! `data_batch_1.bin` … `data_batch_5.bin` and `test_batch.bin`. JPEG tarball:
//! `train/<class>/NNNN.jpg` and `test/<class>/NNNN.jpg`, read round-robin over the classes
//! (each class in file-name order).
use super::{images_from_bytes, labels_from_bytes, LabelledImages};
use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::{Path, PathBuf};
use tch::Tensor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

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

/// Decodes a 32×32 JPEG into channel-major RGB bytes.
fn decode_jpeg(name: &str, tarball: &Path, bytes: &[u8]) -> Result<Vec<u8>> {
    let options = DecoderOptions::default().jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut decoder = JpegDecoder::new_with_options(bytes, options);
    let hwc = decoder
        .decode()
        .map_err(|e| Error::data(tarball, format!("{name}: cannot decode JPEG: {e:?}")))?;
    if hwc.len() != PIXELS {
        return Err(Error::data(
            tarball,
            format!(
                "{name}: expected a 32×32 RGB image, got {} bytes",
                hwc.len()
            ),
        ));
    }
    let mut chw = vec![0u8; PIXELS];
    for (i, px) in hwc.chunks_exact(3).enumerate() {
        for c in 0..3 {
            chw[c * SIDE * SIDE + i] = px[c];
        }
    }
    Ok(chw)
}

/// Orders (is_test, class, file name, pixels) entries split by split, round-robin over the
/// classes: the first file of every class, then the second, and so on. The tarball groups its
/// images by class, and a prefix of a split (`--train-limit`, the critic's training images, the
/// strong suite's first test images) must be a class-balanced subset, as it is in the official
/// binary batches.
fn interleave_classes(images: &mut Vec<(bool, u8, String, Vec<u8>)>) {
    images.sort_by(|a, b| (a.0, a.1, &a.2).cmp(&(b.0, b.1, &b.2)));
    let mut seen = [[0usize; CLASSES.len()]; 2];
    let mut ranked: Vec<_> = images
        .drain(..)
        .map(|image| {
            let rank = &mut seen[image.0 as usize][image.1 as usize];
            *rank += 1;
            (*rank, image)
        })
        .collect();
    ranked.sort_by_key(|(rank, image)| (image.0, *rank, image.1));
    images.extend(ranked.into_iter().map(|(_, image)| image));
}

/// Reads `train/<class>/*.jpg` and `test/<class>/*.jpg` from the tarball.
pub fn read_jpeg_tarball(tarball: &Path) -> Result<(LabelledImages, LabelledImages)> {
    let file = std::fs::File::open(tarball)
        .map_err(|e| Error::data(tarball, format!("cannot open: {e}")))?;
    let corrupt =
        |e: std::io::Error| Error::data(tarball, format!("truncated or corrupt tarball: {e}"));
    let mut archive = tar::Archive::new(GzDecoder::new(file));
    // (is_test, class, file name, pixels)
    let mut images: Vec<(bool, u8, String, Vec<u8>)> = Vec::new();
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
        let Some(class) = CLASSES.iter().position(|c| c == class) else {
            return Err(Error::data(
                tarball,
                format!("{}: unknown class folder '{class}'", path.display()),
            ));
        };
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut bytes).map_err(corrupt)?;
        let pixels = decode_jpeg(&path.to_string_lossy(), tarball, &bytes)?;
        images.push((split == "test", class as u8, name.clone(), pixels));
    }
    interleave_classes(&mut images);
    let split = |test: bool| -> Result<LabelledImages> {
        let chosen: Vec<_> = images.iter().filter(|i| i.0 == test).collect();
        if chosen.is_empty() {
            let which = if test { "test" } else { "train" };
            return Err(Error::data(
                tarball,
                format!("holds no {which}/<class>/*.jpg images"),
            ));
        }
        let labels: Vec<u8> = chosen.iter().map(|i| i.1).collect();
        let pixels: Vec<u8> = chosen.iter().flat_map(|i| i.3.iter().copied()).collect();
        Ok(LabelledImages::new(
            images_from_bytes(&pixels, [labels.len() as i64, 3, SIDE as i64, SIDE as i64]),
            labels_from_bytes(tarball, &labels, 10)?,
        ))
    };
    Ok((split(false)?, split(true)?))
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
    fn jpeg_entries_interleave_the_classes() {
        let entry = |test: bool, class: u8, name: &str| (test, class, name.to_string(), vec![]);
        let mut images = vec![
            entry(false, 2, "0001.jpg"),
            entry(true, 0, "0001.jpg"),
            entry(false, 0, "0002.jpg"),
            entry(false, 1, "0001.jpg"),
            entry(false, 0, "0001.jpg"),
            entry(false, 0, "0003.jpg"),
            entry(true, 1, "0001.jpg"),
        ];
        interleave_classes(&mut images);
        let order: Vec<_> = images.iter().map(|i| (i.0, i.1, i.2.as_str())).collect();
        assert_eq!(
            order,
            vec![
                (false, 0, "0001.jpg"),
                (false, 1, "0001.jpg"),
                (false, 2, "0001.jpg"),
                (false, 0, "0002.jpg"),
                (false, 0, "0003.jpg"),
                (true, 0, "0001.jpg"),
                (true, 1, "0001.jpg"),
            ]
        );
    }

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
