//! Hundreds of damaged inputs, none of which may panic: random bytes, truncations and field
//! edits of a real checkpoint's header, and of a real IDX file's header.
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use wcmi::checkpoint::{self, CheckpointInfo};
use wcmi::data::{idx, DatasetName};
use wcmi::nn::{HeadKind, ModelSpec};

/// A real checkpoint (a linear head on the MNIST encoder) as bytes.
fn checkpoint_bytes(dir: &Path) -> Vec<u8> {
    let spec = ModelSpec::EncoderHead {
        image_shape: [1, 28, 28],
        head: HeadKind::Linear,
        num_classes: 10,
    };
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let _ = spec.build(&vs);
    let path = dir.join("real.safetensors");
    let info = CheckpointInfo::new(spec, Some(DatasetName::Mnist), 0);
    checkpoint::save_model(&path, &vs, &info).unwrap();
    std::fs::remove_file(checkpoint::sidecar_path(&path)).unwrap();
    std::fs::read(&path).unwrap()
}

/// Splits a safetensors file into its header (parsed) and the tensor bytes after it.
fn split(bytes: &[u8]) -> (serde_json::Value, &[u8]) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (
        serde_json::from_slice(&bytes[8..8 + n]).unwrap(),
        &bytes[8 + n..],
    )
}

fn join(header: &serde_json::Value, data: &[u8]) -> Vec<u8> {
    let text = serde_json::to_vec(header).unwrap();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend(text);
    out.extend_from_slice(data);
    out
}

/// A value likely to break a reader: zero, negative, huge, or of the wrong type.
fn hostile(rng: &mut ChaCha8Rng) -> serde_json::Value {
    match rng.random_range(0..6) {
        0 => 0.into(),
        1 => (-rng.random_range(1..1000)).into(),
        2 => (1i64 << rng.random_range(20..62)).into(),
        3 => rng.random_range(0..64).into(),
        4 => "x".into(),
        _ => serde_json::Value::Null,
    }
}

/// Replaces one number found by walking `value` at random with a hostile value.
fn edit_a_number(value: &mut serde_json::Value, rng: &mut ChaCha8Rng) -> bool {
    match value {
        serde_json::Value::Number(_) => {
            *value = hostile(rng);
            true
        }
        serde_json::Value::Array(items) if !items.is_empty() => {
            let i = rng.random_range(0..items.len());
            edit_a_number(&mut items[i], rng)
        }
        serde_json::Value::Object(map) if !map.is_empty() => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let key = &keys[rng.random_range(0..keys.len())];
            edit_a_number(map.get_mut(key).unwrap(), rng)
        }
        _ => false,
    }
}

#[test]
fn damaged_checkpoints_give_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let real = checkpoint_bytes(dir.path());
    let (header, data) = split(&real);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let path = dir.path().join("damaged.safetensors");
    let mut errors = 0;
    for case in 0..300 {
        let bytes = match case % 4 {
            // Truncated anywhere, the header included.
            0 => real[..rng.random_range(0..real.len())].to_vec(),
            // Random bytes over the start of the file.
            1 => {
                let mut b = real.clone();
                for _ in 0..rng.random_range(1..16) {
                    let i = rng.random_range(0..400.min(b.len()));
                    b[i] = rng.random();
                }
                b
            }
            // A number of the safetensors header (shapes, offsets) edited.
            2 => {
                let mut h = header.clone();
                edit_a_number(&mut h, &mut rng);
                join(&h, data)
            }
            // A number of the embedded wcmi description (shapes, classes, epoch) edited.
            _ => {
                let mut h = header.clone();
                let text = h["__metadata__"]["wcmi"].as_str().unwrap().to_string();
                let mut info: serde_json::Value = serde_json::from_str(&text).unwrap();
                edit_a_number(&mut info["model"], &mut rng);
                h["__metadata__"]["wcmi"] = info.to_string().into();
                join(&h, data)
            }
        };
        std::fs::write(&path, &bytes).unwrap();
        let refused =
            std::panic::catch_unwind(|| checkpoint::load_model(&path, tch::Device::Cpu).is_err());
        match refused {
            Err(_) => panic!("case {case} panicked"),
            Ok(true) => errors += 1,
            Ok(false) => {}
        }
    }
    // Most damage must be detected (an edit can leave a valid file, e.g. a number unchanged).
    assert!(
        errors > 200,
        "only {errors} of 300 damaged files were refused"
    );
}

#[test]
fn damaged_idx_files_give_errors_not_panics() {
    let real = idx::read_maybe_gzipped(Path::new("../shared/data/mnist/t10k-images-idx3-ubyte.gz"))
        .unwrap();
    let path = Path::new("damaged-idx3-ubyte");
    assert!(idx::parse(path, &real, 3).is_ok());
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let mut errors = 0;
    for case in 0..300 {
        let bytes = match case % 3 {
            0 => real[..rng.random_range(0..64)].to_vec(),
            1 => {
                let mut b = real[..rng.random_range(0..real.len())].to_vec();
                if !b.is_empty() {
                    let i = rng.random_range(0..16.min(b.len()));
                    b[i] = rng.random();
                }
                b
            }
            _ => {
                let mut b = real.clone();
                let dim = rng.random_range(0..3);
                let value: u32 = match rng.random_range(0..3) {
                    0 => 0,
                    1 => u32::MAX,
                    _ => rng.random(),
                };
                b[4 + 4 * dim..8 + 4 * dim].copy_from_slice(&value.to_be_bytes());
                b
            }
        };
        let result = std::panic::catch_unwind(|| idx::parse(path, &bytes, 3).map(|a| a.dims));
        match result {
            Err(_) => panic!("case {case} panicked"),
            Ok(Err(_)) => errors += 1,
            Ok(Ok(_)) => {}
        }
    }
    assert!(
        errors > 250,
        "only {errors} of 300 damaged files were refused"
    );
}
