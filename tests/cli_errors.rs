//! Bad input gets a one-line error naming the flag or file, a non-zero exit, and no panic.
use std::path::Path;
use std::process::Command;
use wcmi::checkpoint::{self, CheckpointInfo};
use wcmi::data::{idx, DatasetName};
use wcmi::nn::{Encoder, ModelSpec};

fn wcmi(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wcmi"))
        .args(args)
        .output()
        .expect("the wcmi binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "panic for {args:?}: {stderr}");
    (out.status.code().unwrap_or(-1), stderr)
}

fn fails_with(args: &[&str], needles: &[&str]) {
    let (code, stderr) = wcmi(args);
    assert_ne!(code, 0, "{args:?} should fail");
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "one line expected for {args:?}: {stderr}"
    );
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{args:?}: {stderr:?} lacks {needle:?}"
        );
    }
}

#[test]
fn negative_numbers_and_value_lists_name_the_flag() {
    fails_with(
        &["train-supervised", "--dataset", "mnist", "--lr", "-1"],
        &["--lr", "must be a positive number, got -1"],
    );
    fails_with(
        &["train-supervised", "--dataset", "mnist", "--seed", "-1"],
        &["--seed", "'-1'"],
    );
    fails_with(
        &[
            "train-supervised",
            "--dataset",
            "mnist",
            "--adversarial",
            "--eps",
            "-inf",
        ],
        &["--eps", "must be a finite number ≥ 0, got -inf"],
    );
    // Flags the run would ignore are refused.
    fails_with(
        &["train-supervised", "--dataset", "mnist", "--eps", "0.1"],
        &["--eps", "attacks nothing", "--adversarial"],
    );
    fails_with(
        &[
            "train-supervised",
            "--dataset",
            "mnist",
            "--random-start",
            "false",
        ],
        &["--random-start", "attacks nothing"],
    );
    fails_with(
        &[
            "train-supervised",
            "--dataset",
            "mnist",
            "--val-fraction",
            "0",
            "--data-dir",
            "../shared/data",
            "--out",
            "/tmp/wcmi-test-never-written",
        ],
        &["--val-fraction", "holds out no validation images"],
    );
    fails_with(
        &["evaluate", "--checkpoint", "x", "--norm", "l3"],
        &["--norm", "possible values: linf, l2"],
    );
    fails_with(
        &["evaluate", "--checkpoint", "x", "--attack", "nope"],
        &[
            "--attack",
            "possible values: pgd, fgsm, apgd-ce, apgd-dlr, apgd-t, square, strong, autoattack",
        ],
    );
    fails_with(
        &[
            "evaluate",
            "--checkpoint",
            "x",
            "--attack",
            "pgd",
            "--sanity",
        ],
        &["--sanity", "add --attack strong or autoattack"],
    );
    // A folder where a file belongs is named as such; an OS error is shown once.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("mnist/train-images-idx3-ubyte.gz")).unwrap();
    let data = dir.path().to_str().unwrap();
    fails_with(
        &["data", "info", "mnist", "--data-dir", data],
        &["train-images-idx3-ubyte.gz", "is a directory"],
    );
    let (_, stderr) = wcmi(&["evaluate", "--checkpoint", data]);
    assert_eq!(stderr.matches("os error").count(), 1, "{stderr}");
}

#[test]
fn invalid_flags() {
    fails_with(
        &["train-supervised", "--dataset", "svhm"],
        &["--dataset", "unknown dataset 'svhm'"],
    );
    fails_with(
        &["train-supervised", "--dataset", "mnist", "--epochs", "0"],
        &["--epochs", "must be positive, got 0"],
    );
    fails_with(
        &["train-supervised", "--dataset", "mnist", "--epochs", "-3"],
        &["--epochs", "must be positive, got -3"],
    );
    fails_with(
        &["train-supervised", "--dataset", "mnist", "--lr", "0"],
        &["--lr", "must be a positive number"],
    );
    fails_with(
        &["data", "info", "mnist", "--data-dir", "/no/such/dir"],
        &["--data-dir", "/no/such/dir does not exist"],
    );
    fails_with(
        &["reproduce", "--dataset", "mnist", "--trials", "0"],
        &["--trials", "must be positive, got 0"],
    );
    let train_head = ["train-head", "--encoder", "e.safetensors", "--head", "mlp"];
    for (flags, needles) in [
        (&["--precision", "f16"][..], &["--precision", "f16"][..]),
        (
            &["--early-stop"],
            &["--early-stop", "--training standard-es"],
        ),
    ] {
        let args: Vec<&str> = train_head.iter().chain(flags).copied().collect();
        fails_with(&args, needles);
    }
    let empty = tempfile::tempdir().unwrap();
    let out = empty.path().to_str().unwrap();
    fails_with(
        &[
            "reproduce",
            "--dataset",
            "mnist",
            "--report-only",
            "--out",
            out,
        ],
        &["--out", "holds no reproduction"],
    );
    for (flag, value) in [("--mi-bound", "dv"), ("--precision", "bf16")] {
        fails_with(
            &[
                "reproduce",
                "--dataset",
                "mnist",
                "--report-only",
                flag,
                value,
            ],
            &["--report-only", flag],
        );
    }
    for (flags, needles) in [
        (
            &["--jobs", "3", "--threads", "2"][..],
            &["--jobs 3", "--threads"][..],
        ),
        (
            &["--step", "trial-9/encoder-dim"],
            &["--step", "no step 'trial-9/encoder-dim'"],
        ),
        (
            &["--step", "trial-0/encoder-dim", "--jobs", "2"],
            &["--step", "--jobs"],
        ),
    ] {
        let reproduce = ["reproduce", "--dataset", "mnist", "--out", out];
        let args: Vec<&str> = reproduce.iter().chain(flags).copied().collect();
        fails_with(&args, needles);
    }
    assert!(!empty.path().join("config.json").exists());
    fails_with(
        &[
            "train-encoder",
            "--dataset",
            "mnist",
            "--objective",
            "worst-case",
            "--critic",
            "local",
            "--critic-temperature",
            "0.5",
        ],
        &["--critic-temperature", "only the global-cosine critic"],
    );
    fails_with(
        &["bench", "--seed", "3", "--no-peer"],
        &["--seed", "fixed synthetic batches"],
    );
}

fn write_mnist(dir: &Path, images: &[u8], labels: &[u8]) {
    let folder = dir.join("mnist");
    std::fs::create_dir_all(&folder).unwrap();
    for split in ["train", "t10k"] {
        std::fs::write(folder.join(format!("{split}-images-idx3-ubyte")), images).unwrap();
        std::fs::write(folder.join(format!("{split}-labels-idx1-ubyte")), labels).unwrap();
    }
}

#[test]
fn corrupt_data_files() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let images = idx::encode(&[2, 28, 28], &[0; 2 * 784]);
    let labels = idx::encode(&[2], &[1, 2]);
    write_mnist(dir.path(), &images[..images.len() - 100], &labels);
    fails_with(
        &["data", "info", "mnist", "--data-dir", data_dir],
        &["train-images-idx3-ubyte", "truncated"],
    );
    let mut wrong_magic = images.clone();
    wrong_magic[3] = 1;
    write_mnist(dir.path(), &wrong_magic, &labels);
    fails_with(
        &["data", "info", "mnist", "--data-dir", data_dir],
        &["train-images-idx3-ubyte", "wrong magic number"],
    );
    // Structurally valid but not the official release: the pinned SHA-256 catches it.
    write_mnist(dir.path(), &images, &labels);
    fails_with(
        &["data", "info", "mnist", "--data-dir", data_dir],
        &["train-images-idx3-ubyte", "SHA-256 mismatch"],
    );
    fails_with(
        &["data", "info", "cifar10", "--data-dir", data_dir],
        &[
            "cifar10",
            "not found",
            "`wcmi data fetch cifar10` downloads",
        ],
    );
}

#[test]
fn checkpoints_of_another_model_or_shape() {
    let dir = tempfile::tempdir().unwrap();
    let spec = ModelSpec::BaselineH {
        image_shape: [1, 28, 28],
        head: wcmi::nn::HeadKind::Mlp,
        num_classes: 10,
    };
    let info = CheckpointInfo::new(spec.clone(), Some(DatasetName::Mnist), 0);
    // Another model: an encoder alone, described as Baseline-H.
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let _ = Encoder::new(&(vs.root() / "encoder"), [1, 28, 28]);
    let other = dir.path().join("encoder.safetensors");
    checkpoint::save_model(&other, &vs, &info).unwrap();
    fails_with(
        &["evaluate", "--checkpoint", other.to_str().unwrap()],
        &["encoder.safetensors", "missing tensor head."],
    );
    // Same model, other input shape.
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let _ = ModelSpec::BaselineH {
        image_shape: [3, 32, 32],
        head: wcmi::nn::HeadKind::Mlp,
        num_classes: 10,
    }
    .build(&vs);
    let shape = dir.path().join("cifar.safetensors");
    checkpoint::save_model(&shape, &vs, &info).unwrap();
    fails_with(
        &["evaluate", "--checkpoint", shape.to_str().unwrap()],
        &[
            "cifar.safetensors",
            "encoder.fc1.weight has shape [1024, 4096]",
        ],
    );
    fails_with(
        &["evaluate", "--checkpoint", "/no/such.safetensors"],
        &["/no/such.safetensors", "cannot read"],
    );
}

/// A real checkpoint whose embedded description is edited to an impossible dimension is
/// refused before any network is built (libtorch would abort).
#[test]
fn checkpoints_with_impossible_dimensions() {
    let dir = tempfile::tempdir().unwrap();
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let spec = ModelSpec::BaselineH {
        image_shape: [1, 28, 28],
        head: wcmi::nn::HeadKind::Mlp,
        num_classes: 10,
    };
    let _ = spec.build(&vs);
    let edited = |field: &str, spec: ModelSpec| {
        let path = dir.path().join(format!("{field}.safetensors"));
        let info = CheckpointInfo::new(spec, Some(DatasetName::Mnist), 0);
        checkpoint::save_model(&path, &vs, &info).unwrap();
        path
    };
    let cases = [
        (
            "classes",
            ModelSpec::BaselineH {
                image_shape: [1, 28, 28],
                head: wcmi::nn::HeadKind::Mlp,
                num_classes: -3,
            },
            "num_classes is -3",
        ),
        (
            "channels",
            ModelSpec::EncoderHead {
                image_shape: [0, 28, 28],
                head: wcmi::nn::HeadKind::Linear,
                num_classes: 10,
            },
            "image_shape has 0 channels",
        ),
        (
            "height",
            ModelSpec::BaselineH {
                image_shape: [1, -28, 28],
                head: wcmi::nn::HeadKind::Mlp,
                num_classes: 10,
            },
            "image_shape has height -28",
        ),
        (
            "width",
            ModelSpec::EncoderCritic {
                image_shape: [1, 28, 28],
                critic_width: -8,
                critic: wcmi::nn::critic::CriticKind::Global,
                critic_temperature: None,
            },
            "critic_width is -8",
        ),
    ];
    for (field, spec, problem) in cases {
        let path = edited(field, spec);
        let path = path.to_str().unwrap();
        fails_with(&["evaluate", "--checkpoint", path], &[path, problem]);
        fails_with(&["vulnerability", "--checkpoint", path], &[path, problem]);
        fails_with(
            &["train-head", "--encoder", path, "--head", "linear"],
            &[path, problem],
        );
    }
}

/// A training split smaller than one batch is refused, not trained for zero steps.
#[test]
fn training_splits_smaller_than_a_batch() {
    let out = tempfile::tempdir().unwrap();
    let out = out.path().join("run");
    let out = out.to_str().unwrap();
    let data = "../shared/data";
    for command in [
        &["train-encoder", "--objective", "dim"][..],
        &["train-supervised"][..],
    ] {
        let mut args = command.to_vec();
        args.extend([
            "--dataset",
            "mnist",
            "--data-dir",
            data,
            "--train-limit",
            "140",
            "--out",
            out,
        ]);
        fails_with(
            &args,
            &["--batch-size", "128 exceeds the 126 training images"],
        );
    }
    fails_with(
        &[
            "train-encoder",
            "--objective",
            "dim",
            "--dataset",
            "mnist",
            "--data-dir",
            data,
            "--train-limit",
            "10",
            "--batch-size",
            "2",
            "--out",
            out,
        ],
        &["--train-limit", "the validation split holds 1 image(s)"],
    );
    assert!(!Path::new(out).join("model.safetensors").exists());
}

#[test]
fn invalid_attack_settings() {
    let base = ["train-supervised", "--dataset", "mnist", "--adversarial"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        base.iter().chain(extra).copied().collect()
    };
    fails_with(
        &with(&["--eps", "-0.1"]),
        &["--eps", "must be a finite number ≥ 0, got -0.1"],
    );
    fails_with(
        &with(&["--steps", "0"]),
        &["--steps", "must be positive, got 0"],
    );
    fails_with(
        &with(&["--step-size", "0"]),
        &["--step-size", "must be a positive number, got 0"],
    );
    fails_with(
        &with(&["--norm", "l2"]),
        &["--eps", "give one with --norm l2"],
    );
}

#[test]
fn invalid_mi_settings() {
    let dir = tempfile::tempdir().unwrap();
    let spec = ModelSpec::BaselineH {
        image_shape: [1, 28, 28],
        head: wcmi::nn::HeadKind::Mlp,
        num_classes: 10,
    };
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let _ = spec.build(&vs);
    let path = dir.path().join("model.safetensors");
    checkpoint::save_model(
        &path,
        &vs,
        &CheckpointInfo::new(spec, Some(DatasetName::Mnist), 0),
    )
    .unwrap();
    let path = path.to_str().unwrap();
    let base = ["estimate-mi", "--worst-case", "--checkpoint", path];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        base.iter().copied().chain(extra.iter().copied()).collect()
    };
    fails_with(
        &with(&["--layer", "conv9"]),
        &["--layer", "no layer 'conv9'", "encoder, logits"],
    );
    fails_with(
        &with(&["--batch-size", "1"]),
        &["--batch-size", "at least 2"],
    );
    fails_with(&with(&["--eps", "-0.3"]), &["--eps", "got -0.3"]);
    fails_with(&with(&["--steps", "0"]), &["--steps", "must be positive"]);
}

/// A folder that a live run owns is refused to a second run (which would mix their files).
#[test]
fn a_run_folder_in_use_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let _held = wcmi::folder_lock::FolderLock::acquire(&out, "run folder").unwrap();
    let out = out.to_str().unwrap();
    let owner = format!("in use by wcmi process {}", std::process::id());
    for command in [
        &["train-supervised", "--dataset", "mnist"][..],
        &["train-encoder", "--dataset", "mnist", "--objective", "dim"][..],
        &["reproduce", "--dataset", "mnist", "--preset", "quick"][..],
    ] {
        let mut args = command.to_vec();
        args.extend(["--data-dir", "../shared/data", "--out", out]);
        fails_with(&args, &["--out", out, &owner]);
    }
}

/// `train-encoder --random-start` reaches the worst-case objective's PGD (recorded in the
/// checkpoint's configuration); without it the PGD starts at the image, as in the paper's code.
#[test]
fn the_encoder_random_start_flag_reaches_the_objective() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, expected) in [(Some("true"), true), (None, false)] {
        let out = dir.path().join(format!("encoder-{expected}"));
        let mut args = vec![
            "train-encoder",
            "--dataset",
            "mnist",
            "--data-dir",
            "../shared/data",
            "--objective",
            "worst-case",
            "--preset",
            "quick",
            "--epochs",
            "1",
            "--train-limit",
            "200",
            "--batch-size",
            "32",
            "--critic-width",
            "8",
            "--threads",
            "1",
            "--out",
            out.to_str().unwrap(),
        ];
        if let Some(value) = flag {
            args.extend(["--random-start", value]);
        }
        let (code, stderr) = wcmi(&args);
        assert_eq!(code, 0, "{stderr}");
        let (info, _) = checkpoint::read(&out.join("model.safetensors")).unwrap();
        let config: wcmi::train::encoder::EncoderConfig =
            serde_json::from_value(info.config).unwrap();
        assert_eq!(config.attack.random_start, expected, "{flag:?}");
    }
}
