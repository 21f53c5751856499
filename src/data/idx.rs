//! The IDX format of MNIST and Fashion-MNIST, plain or gzip-compressed.
//!
//! Header: two zero bytes, a type byte (0x08 = unsigned byte), the number of dimensions, then
//! each dimension as a big-endian u32. Files with an official name are checked against the
//! SHA-256 published in `shared/data/README.md` (see [`super::fetch`]).
use super::{images_from_bytes, labels_from_bytes, official, LabelledImages};
use crate::error::{Error, Result};
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A decoded IDX array of unsigned bytes.
#[derive(Debug, PartialEq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Reads a file whole, gunzipping it when it starts with the gzip magic bytes.
pub fn read_maybe_gzipped(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::data(path, format!("cannot read: {e}")))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 4);
        GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| Error::data(path, format!("truncated or corrupt gzip data: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses IDX bytes, which must have `ndims` dimensions.
pub fn parse(path: &Path, bytes: &[u8], ndims: usize) -> Result<IdxArray> {
    if bytes.len() < 4 {
        return Err(Error::data(
            path,
            format!(
                "truncated: {} bytes is shorter than the IDX header",
                bytes.len()
            ),
        ));
    }
    let expected_magic = 0x0800 + ndims as u32;
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if magic != expected_magic {
        return Err(Error::data(
            path,
            format!(
                "wrong magic number 0x{magic:08x}, expected 0x{expected_magic:08x} \
                 (unsigned bytes, {ndims} dimensions)"
            ),
        ));
    }
    let header_len = 4 + 4 * ndims;
    if bytes.len() < header_len {
        return Err(Error::data(path, "truncated inside the IDX header"));
    }
    let dims: Vec<usize> = bytes[4..header_len]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let got = bytes.len() - header_len;
    let Some(expected) = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) else {
        return Err(Error::data(
            path,
            format!("the header declares {dims:?}, more bytes than any file holds"),
        ));
    };
    if got < expected {
        return Err(Error::data(
            path,
            format!("truncated: the header declares {dims:?} = {expected} bytes of data, the file has {got}"),
        ));
    }
    if got > expected {
        return Err(Error::data(
            path,
            format!(
                "{} unexpected bytes after the {dims:?} array",
                got - expected
            ),
        ));
    }
    Ok(IdxArray {
        dims,
        data: bytes[header_len..].to_vec(),
    })
}

/// Reads, parses and (for official file names) verifies one IDX file.
pub fn read(path: &Path, ndims: usize) -> Result<IdxArray> {
    let bytes = read_maybe_gzipped(path)?;
    let array = parse(path, &bytes, ndims)?;
    official::verify_pinned(path, &bytes)?;
    Ok(array)
}

/// `folder/name` or `folder/name.gz`, whichever exists.
fn find(folder: &Path, name: &str) -> Result<PathBuf> {
    let plain = folder.join(name);
    let gz = folder.join(format!("{name}.gz"));
    if let Some(found) = [&plain, &gz].into_iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    if let Some(dir) = [&plain, &gz].into_iter().find(|p| p.is_dir()) {
        return Err(Error::data(dir, "is a directory, not an IDX file"));
    }
    Err(Error::data(
        gz,
        "missing (looked for it plain and gzip-compressed)",
    ))
}

/// Loads the `prefix` split (`train` or `t10k`) of an MNIST-like folder.
pub fn load_split(folder: &Path, prefix: &str) -> Result<LabelledImages> {
    let images_path = find(folder, &format!("{prefix}-images-idx3-ubyte"))?;
    let labels_path = find(folder, &format!("{prefix}-labels-idx1-ubyte"))?;
    let images = read(&images_path, 3)?;
    let labels = read(&labels_path, 1)?;
    let (n, h, w) = (images.dims[0], images.dims[1], images.dims[2]);
    if labels.dims[0] != n {
        return Err(Error::data(
            &labels_path,
            format!(
                "{} labels but {} holds {n} images",
                labels.dims[0],
                images_path.display()
            ),
        ));
    }
    let images = images_from_bytes(&images.data, [n as i64, 1, h as i64, w as i64]);
    let labels = labels_from_bytes(&labels_path, &labels.data, 10)?;
    Ok(LabelledImages::new(images, labels))
}

/// Encodes an IDX array (used by tests and by tools that write subsets).
pub fn encode(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&(*d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(bytes: &[u8], ndims: usize) -> String {
        parse(Path::new("x.idx"), bytes, ndims)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn round_trips_an_array() {
        let bytes = encode(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        let array = parse(Path::new("x"), &bytes, 2).unwrap();
        assert_eq!(array.dims, vec![2, 3]);
        assert_eq!(array.data, vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn rejects_bad_magic_truncation_and_trailing_bytes() {
        let good = encode(&[2, 2, 2], &[0; 8]);
        let mut bad_magic = good.clone();
        bad_magic[2] = 0x0d;
        assert!(err(&bad_magic, 3).contains("wrong magic number 0x00000d03"));
        assert!(err(&good, 1).contains("expected 0x00000801"));
        assert!(err(&good[..good.len() - 1], 3).contains("truncated"));
        assert!(err(&good[..6], 3).contains("truncated inside the IDX header"));
        assert!(err(&good[..2], 3).contains("truncated"));
        let mut long = good.clone();
        long.push(0);
        assert!(err(&long, 3).contains("1 unexpected bytes"));
    }

    #[test]
    fn detects_truncated_gzip() {
        use flate2::{write::GzEncoder, Compression};
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.gz");
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(&encode(&[1000], &[7; 1000])).unwrap();
        let gz = enc.finish().unwrap();
        std::fs::write(&path, &gz[..gz.len() / 2]).unwrap();
        let e = read_maybe_gzipped(&path).unwrap_err().to_string();
        assert!(
            e.contains("a.gz") && e.contains("truncated or corrupt gzip"),
            "{e}"
        );
        std::fs::write(&path, &gz).unwrap();
        assert_eq!(
            parse(&path, &read_maybe_gzipped(&path).unwrap(), 1)
                .unwrap()
                .data,
            vec![7; 1000]
        );
    }

    #[test]
    fn image_and_label_counts_must_agree() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("train-images-idx3-ubyte"),
            encode(&[3, 2, 2], &[0; 12]),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("train-labels-idx1-ubyte"),
            encode(&[2], &[0, 1]),
        )
        .unwrap();
        let e = load_split(dir.path(), "train").unwrap_err().to_string();
        assert!(
            e.contains("2 labels but") && e.contains("holds 3 images"),
            "{e}"
        );
        std::fs::write(
            dir.path().join("train-labels-idx1-ubyte"),
            encode(&[3], &[0, 1, 11]),
        )
        .unwrap();
        let e = load_split(dir.path(), "train").unwrap_err().to_string();
        assert!(e.contains("label 11 at index 2"), "{e}");
        std::fs::write(
            dir.path().join("train-labels-idx1-ubyte"),
            encode(&[3], &[0, 1, 9]),
        )
        .unwrap();
        let split = load_split(dir.path(), "train").unwrap();
        assert_eq!(split.len(), 3);
        assert_eq!(split.image_shape(), [1, 2, 2]);
    }
}
