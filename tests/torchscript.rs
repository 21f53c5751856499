//! TorchScript models (issue 18): the committed fixture (made by
//! tests/fixtures/make_torchscript_fixture.py) against wcmi's native head with the same weights,
//! gradients to the input, and every way a file can fail to be a usable model.
use std::path::{Path, PathBuf};
use std::process::Command;
use tch::nn::{ModuleT, VarStore};
use tch::{Device, Kind, Tensor};
use wcmi::data::{synthetic, Dataset, DatasetName};
use wcmi::model::Model;
use wcmi::nn::script::ScriptModel;
use wcmi::nn::{Head, HeadKind};

fn fixture(ext: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/pooled_mlp.{ext}"))
}

fn pooled(x: &Tensor) -> Tensor {
    x.adaptive_avg_pool2d([8, 8]).flatten(1, -1)
}

/// A few synthetic images of `name`'s shape: what the model checks run on.
fn data(name: DatasetName) -> Dataset {
    let set = || synthetic::class_templates(10, name.image_shape(), 10, 0.1, 1);
    Dataset::named(name, set(), set())
}

fn images(n: i64) -> Tensor {
    tch::manual_seed(7);
    Tensor::rand([n, 1, 28, 28], (Kind::Float, Device::Cpu))
}

#[test]
fn the_fixture_matches_wcmi_s_head_with_its_weights() {
    let script = ScriptModel::load(&fixture("pt"), Device::Cpu).unwrap();
    let vs = VarStore::new(Device::Cpu);
    let head = Head::new(&vs.root(), HeadKind::Mlp, 10);
    let mut variables = vs.variables();
    let saved = Tensor::read_safetensors(fixture("safetensors")).unwrap();
    let mut names: Vec<_> = saved.iter().map(|(n, _)| n.clone()).collect();
    let mut expected: Vec<_> = variables.keys().cloned().collect();
    names.sort();
    expected.sort();
    assert_eq!(
        names, expected,
        "the fixture's weights are wcmi's MLP head's"
    );
    tch::no_grad(|| {
        for (name, tensor) in &saved {
            variables.get_mut(name).unwrap().copy_(tensor);
        }
    });
    let x = images(16);
    let native = head.forward_t(&pooled(&x), false);
    let scripted = script.forward_t(&x, false);
    assert_eq!(scripted.size(), [16, 10]);
    let gap = (&native - &scripted).abs().max().double_value(&[]);
    assert!(gap < 1e-5, "logits differ by {gap}");
    let scale = native.abs().max().double_value(&[]);
    assert!(scale > 0.1, "logits too small to compare: {scale}");
    assert_eq!(script.layer_width("encode", [1, 28, 28]).unwrap(), 200);
    script.check_classifier([1, 28, 28], 10).unwrap();
}

#[test]
fn a_torchscript_model_gives_input_gradients_and_its_layers() {
    let model = Model::torchscript(&fixture("pt"), Device::Cpu).unwrap();
    let classifier = model.classifier(&data(DatasetName::Mnist)).unwrap();
    let x = images(4).set_requires_grad(true);
    classifier.forward_t(&x, false).sum(Kind::Float).backward();
    let grad = x.grad();
    assert!(grad.defined() && grad.abs().sum(Kind::Float).double_value(&[]) > 0.0);
    let layer = model.layer("encode", &data(DatasetName::Mnist)).unwrap();
    assert_eq!(layer.width, 200);
    assert_eq!(layer.forward(&images(3)).size(), [3, 200]);
    assert_eq!(model.default_layer(), "encode");
    assert_eq!(model.dataset(), None);
}

fn error_of(result: wcmi::error::Result<impl Sized>) -> String {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_models_are_named_with_their_problem() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pt");
    std::fs::write(&garbage, b"not a model").unwrap();
    let e = error_of(ScriptModel::load(&garbage, Device::Cpu));
    assert!(
        e.contains("garbage.pt") && e.contains("is not a TorchScript model"),
        "{e}"
    );
    assert!(!e.contains('\n'), "one line expected: {e}");
    let e = error_of(ScriptModel::load(
        &dir.path().join("absent.pt"),
        Device::Cpu,
    ));
    assert!(e.contains("absent.pt: no such file"), "{e}");

    let model = Model::torchscript(&fixture("pt"), Device::Cpu).unwrap();
    let e = error_of(model.layer("nope", &data(DatasetName::Mnist)));
    assert!(
        e.contains("pooled_mlp.pt") && e.contains("method `nope`"),
        "{e}"
    );
    let e = error_of(model.layer("pair", &data(DatasetName::Mnist)));
    assert!(e.contains("returns a tuple, not a tensor"), "{e}");
    // CIFAR-10's 3 channels pool to 192 features, which the head's first layer rejects.
    let e = error_of(model.classifier(&data(DatasetName::Cifar10)));
    assert!(
        e.contains("forward fails on inputs of shape [2, 3, 32, 32]"),
        "{e}"
    );
    let script = ScriptModel::load(&fixture("pt"), Device::Cpu).unwrap();
    let e = error_of(script.check_classifier([1, 28, 28], 3));
    assert!(
        e.contains("returns 10 logits per image; the dataset has 3 classes"),
        "{e}"
    );
}

#[test]
fn the_cli_takes_a_model_and_needs_its_dataset() {
    let out = Command::new(env!("CARGO_BIN_EXE_wcmi"))
        .args(["evaluate", "--model"])
        .arg(fixture("pt"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("--dataset: the TorchScript model") && stderr.contains("names no dataset"),
        "{stderr}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_wcmi"))
        .args([
            "evaluate",
            "--model",
            "a.pt",
            "--checkpoint",
            "b.safetensors",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}
