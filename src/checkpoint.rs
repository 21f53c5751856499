//! Checkpoints: safetensors weights with a JSON sidecar, both written atomically.
//!
//! Tensor names are PyTorch `state_dict` names (`encoder.conv1.conv.weight`, …), so the file
//! loads into the equivalent `nn.Module` of `bench/peer/models.py`. The sidecar (`X.json` beside
//! `X.safetensors`) is also embedded in the safetensors header under the key `wcmi`, which keeps
//! the two consistent even if a run dies between the two writes; a safetensors file written by
//! another tool is accepted when its sidecar is present.
use crate::atomic::{write_atomic, write_json_atomic};
use crate::data::DatasetName;
use crate::error::{Error, Result};
use crate::nn::{named_variables, ModelSpec, Network};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

const METADATA_KEY: &str = "wcmi";

/// What a checkpoint describes: the sidecar.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckpointInfo {
    pub model: ModelSpec,
    pub dataset: Option<DatasetName>,
    pub seed: u64,
    /// Epochs completed when the weights were saved.
    pub epoch: usize,
    /// The full configuration of the run that produced it.
    pub config: serde_json::Value,
    pub metrics: serde_json::Value,
    pub wcmi_version: String,
}

impl CheckpointInfo {
    pub fn new(model: ModelSpec, dataset: Option<DatasetName>, seed: u64) -> Self {
        Self {
            model,
            dataset,
            seed,
            epoch: 0,
            config: serde_json::Value::Null,
            metrics: serde_json::Value::Null,
            wcmi_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

impl CheckpointInfo {
    /// The description of a training run's checkpoints, with its configuration.
    pub fn for_run(
        model: ModelSpec,
        dataset: Option<DatasetName>,
        seed: u64,
        config: &impl Serialize,
    ) -> Result<Self> {
        Ok(Self {
            config: serde_json::to_value(config)
                .map_err(|e| Error::invalid("config", e.to_string()))?,
            ..Self::new(model, dataset, seed)
        })
    }
}

pub fn sidecar_path(weights: &Path) -> PathBuf {
    weights.with_extension("json")
}

fn dtype(kind: Kind) -> Result<Dtype> {
    Ok(match kind {
        Kind::Float => Dtype::F32,
        Kind::Double => Dtype::F64,
        Kind::BFloat16 => Dtype::BF16,
        Kind::Half => Dtype::F16,
        Kind::Int64 => Dtype::I64,
        Kind::Int => Dtype::I32,
        Kind::Uint8 => Dtype::U8,
        Kind::Bool => Dtype::BOOL,
        other => {
            return Err(Error::invalid(
                "checkpoint",
                format!("cannot store {other:?} tensors"),
            ))
        }
    })
}

fn kind(dtype: Dtype) -> Option<Kind> {
    Some(match dtype {
        Dtype::F32 => Kind::Float,
        Dtype::F64 => Kind::Double,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::F16 => Kind::Half,
        Dtype::I64 => Kind::Int64,
        Dtype::I32 => Kind::Int,
        Dtype::U8 => Kind::Uint8,
        Dtype::BOOL => Kind::Bool,
        _ => return None,
    })
}

/// Writes named tensors and `info` (embedded and as the sidecar), atomically.
pub fn save(path: &Path, tensors: &[(String, Tensor)], info: &CheckpointInfo) -> Result<()> {
    let mut raw = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let t = t.detach().to_device(Device::Cpu).contiguous();
        let mut bytes = vec![0u8; t.numel() * t.kind().elt_size_in_bytes()];
        t.f_copy_data_u8(&mut bytes, t.numel())?;
        let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
        raw.push((name.clone(), dtype(t.kind())?, shape, bytes));
    }
    let views = raw
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            TensorView::new(*dtype, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| Error::checkpoint(path, format!("tensor {name}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let info_json = serde_json::to_string(info)
        .map_err(|e| Error::checkpoint(path, format!("cannot serialise metadata: {e}")))?;
    let metadata = HashMap::from([
        (METADATA_KEY.to_string(), info_json),
        ("format".to_string(), "pt".to_string()),
    ]);
    let bytes = safetensors::serialize(views, Some(metadata))
        .map_err(|e| Error::checkpoint(path, format!("cannot serialise: {e}")))?;
    write_atomic(path, &bytes)?;
    write_json_atomic(&sidecar_path(path), info)
}

/// Reads every tensor of a checkpoint and its description.
pub fn read(path: &Path) -> Result<(CheckpointInfo, BTreeMap<String, Tensor>)> {
    let bytes =
        std::fs::read(path).map_err(|e| Error::checkpoint(path, format!("cannot read: {e}")))?;
    let corrupt = |e: safetensors::SafeTensorError| {
        Error::checkpoint(path, format!("not a valid safetensors file: {e}"))
    };
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(corrupt)?;
    let embedded = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(METADATA_KEY).cloned());
    let sidecar = sidecar_path(path);
    let info_json = match embedded {
        Some(json) => {
            warn_if_sidecar_differs(path, &sidecar, &json);
            json
        }
        None => std::fs::read_to_string(&sidecar).map_err(|e| {
            Error::checkpoint(
                path,
                format!("no wcmi metadata and no sidecar {}: {e}", sidecar.display()),
            )
        })?,
    };
    let info: CheckpointInfo = serde_json::from_str(&info_json)
        .map_err(|e| Error::checkpoint(path, format!("unreadable metadata: {e}")))?;
    if let Some(problem) = info.model.problem() {
        return Err(Error::checkpoint(path, format!("metadata: {problem}")));
    }
    if newer_than_this(&info.wcmi_version) {
        eprintln!(
            "warning: checkpoint {} was written by wcmi {}, newer than this {}; it may not be read as intended",
            path.display(),
            info.wcmi_version,
            env!("CARGO_PKG_VERSION")
        );
    }
    let tensors = SafeTensors::deserialize(&bytes).map_err(corrupt)?;
    let mut out = BTreeMap::new();
    for (name, view) in tensors.tensors() {
        let kind = kind(view.dtype()).ok_or_else(|| {
            Error::checkpoint(
                path,
                format!("tensor {name} has unsupported dtype {:?}", view.dtype()),
            )
        })?;
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        out.insert(name, Tensor::f_from_data_size(view.data(), &shape, kind)?);
    }
    Ok((info, out))
}

/// Whether `version` (x.y.z) is newer than this build's.
fn newer_than_this(version: &str) -> bool {
    let parse = |v: &str| -> Vec<u64> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parse(version) > parse(env!("CARGO_PKG_VERSION"))
}

/// The embedded description is the one read (it is written with the weights, in one file);
/// a sidecar that says otherwise was edited or left from another run, which the user should
/// know.
fn warn_if_sidecar_differs(path: &Path, sidecar: &Path, embedded: &str) {
    let Ok(text) = std::fs::read_to_string(sidecar) else {
        return;
    };
    let parse = |t: &str| serde_json::from_str::<serde_json::Value>(t).ok();
    if parse(&text) != parse(embedded) {
        eprintln!(
            "warning: {} differs from the description embedded in {}; using the embedded one",
            sidecar.display(),
            path.display()
        );
    }
}

/// Copies `tensors[prefix + name]` into every variable of `vs` whose name starts with `scope`
/// (all of them for `""`), after checking that the names and shapes under `prefix + scope`
/// match exactly; any mismatch is reported in full, and nothing is copied.
pub fn load_into(
    vs: &VarStore,
    scope: &str,
    tensors: &BTreeMap<String, Tensor>,
    prefix: &str,
    path: &Path,
) -> Result<()> {
    let vars: Vec<_> = named_variables(vs)
        .into_iter()
        .filter(|(n, _)| n.starts_with(scope))
        .collect();
    let mut problems = Vec::new();
    for (name, var) in &vars {
        match tensors.get(&format!("{prefix}{name}")) {
            None => problems.push(format!("missing tensor {name}")),
            Some(t) if t.size() != var.size() => problems.push(format!(
                "{name} has shape {:?} in the file but {:?} in the model",
                t.size(),
                var.size()
            )),
            Some(_) => {}
        }
    }
    let expected: std::collections::HashSet<String> =
        vars.iter().map(|(n, _)| format!("{prefix}{n}")).collect();
    problems.extend(
        tensors
            .keys()
            .filter(|k| k.starts_with(&format!("{prefix}{scope}")) && !expected.contains(*k))
            .map(|k| format!("unexpected tensor {k}")),
    );
    if !problems.is_empty() {
        let shown = problems.len().min(5);
        let more = if problems.len() > shown {
            format!(" (and {} more)", problems.len() - shown)
        } else {
            String::new()
        };
        return Err(Error::checkpoint(
            path,
            format!(
                "does not fit the model: {}{more}",
                problems[..shown].join("; ")
            ),
        ));
    }
    tch::no_grad(|| {
        for (name, mut var) in vars {
            let t = &tensors[&format!("{prefix}{name}")];
            var.copy_(&t.to_kind(var.kind()).to_device(var.device()));
        }
    });
    Ok(())
}

/// Saves a model's variables.
pub fn save_model(path: &Path, vs: &VarStore, info: &CheckpointInfo) -> Result<()> {
    save(path, &named_variables(vs), info)
}

/// A network rebuilt from a checkpoint.
pub struct LoadedModel {
    pub info: CheckpointInfo,
    pub vs: VarStore,
    pub network: Network,
}

/// Rebuilds the network a checkpoint describes and loads its weights.
pub fn load_model(path: &Path, device: Device) -> Result<LoadedModel> {
    let (info, tensors) = read(path)?;
    let vs = VarStore::new(device);
    let network = info.model.build(&vs);
    load_into(&vs, "", &tensors, "", path)?;
    Ok(LoadedModel { info, vs, network })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{Encoder, Head, HeadKind};
    use tch::nn;

    fn info() -> CheckpointInfo {
        CheckpointInfo::new(
            ModelSpec::BaselineH {
                image_shape: [1, 28, 28],
                head: HeadKind::Mlp,
                num_classes: 10,
            },
            Some(DatasetName::Mnist),
            3,
        )
    }

    #[test]
    fn round_trips_weights_and_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = Encoder::new(&vs.root(), [1, 28, 28]);
        let mut meta = info();
        meta.epoch = 7;
        save_model(&path, &vs, &meta).unwrap();
        assert!(sidecar_path(&path).is_file());
        let (read_info, tensors) = read(&path).unwrap();
        assert_eq!(read_info.epoch, 7);
        let other = nn::VarStore::new(Device::Cpu);
        let _ = Encoder::new(&other.root(), [1, 28, 28]);
        load_into(&other, "", &tensors, "", &path).unwrap();
        for (name, t) in named_variables(&vs) {
            assert!(t.equal(&other.variables()[&name]), "{name}");
        }
        // An edited sidecar does not override the embedded description (a warning says so).
        let edited = std::fs::read_to_string(sidecar_path(&path))
            .unwrap()
            .replace("\"epoch\": 7", "\"epoch\": 9");
        std::fs::write(sidecar_path(&path), edited).unwrap();
        assert_eq!(read(&path).unwrap().0.epoch, 7);
        // A safetensors file without embedded metadata is read with its sidecar.
        let plain = dir.path().join("plain.safetensors");
        let bytes = safetensors::serialize(
            [(
                "w".to_string(),
                TensorView::new(Dtype::F32, vec![1], &[0u8; 4]).unwrap(),
            )],
            None,
        )
        .unwrap();
        std::fs::write(&plain, bytes).unwrap();
        std::fs::copy(sidecar_path(&path), sidecar_path(&plain)).unwrap();
        assert_eq!(read(&plain).unwrap().0.epoch, 9);
    }

    #[test]
    fn reports_mismatched_shapes_and_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = Encoder::new(&vs.root(), [3, 32, 32]);
        save_model(&path, &vs, &info()).unwrap();
        let (_, tensors) = read(&path).unwrap();
        let mnist = nn::VarStore::new(Device::Cpu);
        let _ = Encoder::new(&mnist.root(), [1, 28, 28]);
        let e = load_into(&mnist, "", &tensors, "", &path)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("c.safetensors")
                && e.contains("fc1.weight has shape [1024, 4096] in the file but [1024, 2304]"),
            "{e}"
        );
        let head = nn::VarStore::new(Device::Cpu);
        let _ = Head::new(&head.root(), HeadKind::Linear, 10);
        let e = load_into(&head, "", &tensors, "", &path)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("missing tensor fc.weight") && e.contains("unexpected tensor"),
            "{e}"
        );
    }

    #[test]
    fn versions_compare_by_number() {
        assert!(newer_than_this("99.0.0"));
        assert!(newer_than_this(&format!("{}.1", env!("CARGO_PKG_VERSION"))));
        assert!(!newer_than_this(env!("CARGO_PKG_VERSION")));
        assert!(!newer_than_this("0.0.9"));
    }

    #[test]
    fn rejects_files_that_are_not_safetensors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.safetensors");
        std::fs::write(&path, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json").unwrap();
        let e = read(&path).err().unwrap().to_string();
        assert!(
            e.contains("bad.safetensors") && e.contains("not a valid safetensors"),
            "{e}"
        );
        let e = read(&dir.path().join("none.safetensors"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("cannot read"), "{e}");
    }
}
