//! Image folders (issue 18): torchvision's ImageFolder layout written to a temporary directory
//! and read back, measured by the CLI through a TorchScript model, and every way a folder can be
//! wrong.
use std::path::{Path, PathBuf};
use std::process::Command;
use wcmi::data::Dataset;

const SIDE: u32 = 20;

/// The pixel of image `index` of `class` at (row, col): distinct per image, class and place.
fn pixel(class: usize, index: usize, row: u32, col: u32) -> u8 {
    ((class * 23 + index * 7) as u32 + row * 3 + col) as u8
}

fn write_png(path: &Path, width: u32, height: u32, color: png::ColorType, pixels: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut encoder = png::Encoder::new(file, width, height);
    encoder.set_color(color);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(pixels).unwrap();
}

fn gray_image(class: usize, index: usize) -> Vec<u8> {
    (0..SIDE)
        .flat_map(|row| (0..SIDE).map(move |col| pixel(class, index, row, col)))
        .collect()
}

/// `classes` classes named `class-<c>`, `train` and `test` gray 20×20 images each.
fn image_folder(root: &Path, classes: usize, train: usize, test: usize) -> PathBuf {
    for (split, count) in [("train", train), ("test", test)] {
        for class in 0..classes {
            for index in 0..count {
                let path = root.join(format!("{split}/class-{class}/{index:03}.png"));
                write_png(
                    &path,
                    SIDE,
                    SIDE,
                    png::ColorType::Grayscale,
                    &gray_image(class, index),
                );
            }
        }
    }
    std::fs::write(root.join("train/README.txt"), "not a class").unwrap();
    std::fs::write(root.join("train/class-0/notes.txt"), "not an image").unwrap();
    root.to_path_buf()
}

fn wcmi(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wcmi"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The threat an image folder needs, and a critic small enough for a test.
const THREAT: &[&str] = &["--eps", "0.1", "--steps", "2", "--step-size", "0.05"];
const CRITIC: &[&str] = &[
    "--critic-epochs",
    "1",
    "--batch-size",
    "4",
    "--test-batches",
    "2",
];

/// Runs `command` on the fixture and the folder `root` with the flag groups given, one thread,
/// writing to `out`.
fn measure(command: &str, root: &str, flags: &[&[&str]], out: &Path) -> (bool, String, String) {
    let model = fixture();
    let mut args = vec![
        command,
        "--model",
        &model,
        "--dataset",
        root,
        "--threads",
        "1",
    ];
    args.extend(flags.iter().flat_map(|group| group.iter().copied()));
    args.extend(["--out", out.to_str().unwrap()]);
    wcmi(&args)
}

fn fixture() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pooled_mlp.pt")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn a_folder_reads_back_class_balanced_with_its_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let root = image_folder(dir.path(), 3, 4, 2);
    let data = Dataset::load_folder(&root).unwrap();
    assert_eq!(data.classes, vec!["class-0", "class-1", "class-2"]);
    assert_eq!(data.train.images.size(), vec![12, 1, 20, 20]);
    assert_eq!(data.test.len(), 6);
    // Round-robin over the classes, each in file-name order.
    assert_eq!(
        Vec::<i64>::try_from(&data.train.labels).unwrap(),
        vec![0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]
    );
    assert_eq!(
        Vec::<i64>::try_from(&data.test.labels).unwrap(),
        vec![0, 1, 2, 0, 1, 2]
    );
    // Train image 4 is class 1's second file; (row 5, col 7).
    assert_eq!(
        data.train.images.int64_value(&[4, 0, 5, 7]),
        pixel(1, 1, 5, 7) as i64
    );
    assert_eq!(
        data.test.images.int64_value(&[5, 0, 19, 0]),
        pixel(2, 1, 19, 0) as i64
    );
}

#[test]
fn a_folder_mixing_gray_and_colour_is_read_in_colour() {
    let dir = tempfile::tempdir().unwrap();
    let root = image_folder(dir.path(), 2, 1, 1);
    let rgb: Vec<u8> = (0..SIDE * SIDE).flat_map(|i| [i as u8, 100, 200]).collect();
    write_png(
        &root.join("test/class-1/rgb.png"),
        SIDE,
        SIDE,
        png::ColorType::Rgb,
        &rgb,
    );
    let data = Dataset::load_folder(&root).unwrap();
    assert_eq!(data.image_shape(), [3, 20, 20]);
    // The gray train image of class 0, copied to all three channels.
    let expected = pixel(0, 0, 2, 3) as i64;
    for c in 0..3 {
        assert_eq!(data.train.images.int64_value(&[0, c, 2, 3]), expected);
    }
    // The colour image is class 1's second test file (file-name order: 000.png, rgb.png).
    assert_eq!(data.test.images.int64_value(&[2, 1, 0, 0]), 100);
    assert_eq!(data.test.images.int64_value(&[2, 2, 0, 0]), 200);
}

#[test]
fn bad_folders_are_named_with_their_problem() {
    let error = |setup: &dyn Fn(&Path)| {
        let dir = tempfile::tempdir().unwrap();
        let root = image_folder(dir.path(), 2, 2, 1);
        setup(&root);
        Dataset::load_folder(&root).unwrap_err().to_string()
    };
    let e = error(&|root| {
        write_png(
            &root.join("train/class-1/big.png"),
            SIDE + 1,
            SIDE,
            png::ColorType::Grayscale,
            &vec![0; ((SIDE + 1) * SIDE) as usize],
        )
    });
    assert!(
        e.contains("train/class-1/big.png is 1×20×21") && e.contains("one size"),
        "{e}"
    );
    let e =
        error(&|root| std::fs::write(root.join("test/class-0/broken.png"), b"\x89PNG").unwrap());
    assert!(
        e.contains("broken.png") && e.contains("cannot decode PNG"),
        "{e}"
    );
    let e = error(&|root| {
        write_png(
            &root.join("test/zebra/0.png"),
            SIDE,
            SIDE,
            png::ColorType::Grayscale,
            &gray_image(0, 0),
        )
    });
    assert!(
        e.contains("class 'zebra' is not among train/'s classes"),
        "{e}"
    );
    let e = error(&|root| std::fs::create_dir(root.join("train/empty")).unwrap());
    assert!(
        e.contains("train/empty") && e.contains("no PNG or JPEG"),
        "{e}"
    );
    let e = error(&|root| std::fs::remove_dir_all(root.join("test")).unwrap());
    assert!(e.contains("test") && e.contains("not found"), "{e}");
}

#[test]
fn the_cli_measures_a_torchscript_model_on_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let root = image_folder(&dir.path().join("digits"), 10, 3, 2);
    let root = root.to_str().unwrap();
    let (ok, stdout, stderr) = wcmi(&["data", "info", root]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("10 classes (class-0, class-1") && stdout.contains("1×20×20"),
        "{stdout}"
    );
    let out = dir.path().join("eval.json");
    let (ok, _, stderr) = measure("evaluate", root, &[&["--attack", "pgd"]], &out);
    assert!(!ok);
    assert!(
        stderr.contains("--eps, --steps, --step-size") && stderr.contains("no default threat"),
        "{stderr}"
    );
    let (ok, stdout, stderr) = measure("evaluate", root, &[&["--attack", "pgd"], THREAT], &out);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("20 images"), "{stdout}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(json["dataset"], root);
    assert_eq!(json["examples"], 20);
    let out = dir.path().join("mi.json");
    let (ok, _, stderr) = measure("estimate-mi", root, &[CRITIC], &out);
    assert!(ok, "{stderr}");
    assert!(out.is_file());
    let out = dir.path().join("rv.json");
    let (ok, stdout, stderr) = measure("vulnerability", root, &[CRITIC, THREAT], &out);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("RV = I − I_wc"), "{stdout}");
    let (ok, _, stderr) = measure("estimate-mi", root, &[&["--eps", "0.1"]], &out);
    assert!(!ok);
    assert!(
        stderr.contains("--eps") && stderr.contains("--worst-case"),
        "{stderr}"
    );
}

#[test]
fn a_folder_the_model_does_not_fit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = image_folder(dir.path(), 3, 2, 1);
    let root = root.to_str().unwrap();
    let (ok, _, stderr) = wcmi(&["evaluate", "--model", &fixture(), "--dataset", root]);
    assert!(!ok);
    assert!(
        stderr.contains("pooled_mlp.pt")
            && stderr.contains("10 logits")
            && stderr.contains("3 classes"),
        "{stderr}"
    );
    let (ok, _, stderr) = wcmi(&[
        "evaluate",
        "--model",
        &fixture(),
        "--dataset",
        "no-such-set",
    ]);
    assert!(!ok);
    assert!(stderr.contains("unknown dataset 'no-such-set'"), "{stderr}");
}

#[test]
fn compare_measures_models_side_by_side_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let root = image_folder(&dir.path().join("digits"), 10, 3, 2);
    let root = root.to_str().unwrap();
    let out = dir.path().join("comparison");
    let model = fixture();
    let compare = |models: &[String]| {
        let mut args: Vec<&str> = vec!["compare"];
        args.extend(models.iter().map(String::as_str));
        args.extend(["--dataset", root, "--limit", "10", "--threads", "1"]);
        args.extend(THREAT.iter().chain(CRITIC));
        args.extend(["--out", out.to_str().unwrap()]);
        wcmi(&args)
    };
    let (ok, stdout, stderr) = compare(&[format!("first={model}")]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("| first ") && stdout.contains("encode (200)"),
        "{stdout}"
    );
    // A second model joins the finished comparison; the first is not measured again.
    let (ok, stdout, stderr) = compare(&[format!("first={model}"), format!("second={model}")]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("first: evaluation: done earlier"),
        "{stderr}"
    );
    assert!(stderr.contains("second: evaluation: running"), "{stderr}");
    assert!(stdout.contains("| second "), "{stdout}");
    let results: wcmi::compare::Comparison =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results.models.len(), 2);
    // The same model, the same seeded attacks: the same numbers.
    let [a, b] = [&results.models[0], &results.models[1]];
    assert_eq!(a.evaluation.examples, 10);
    assert_eq!(a.evaluation.natural_accuracy, b.evaluation.natural_accuracy);
    assert_eq!(a.evaluation.suite_accuracy, b.evaluation.suite_accuracy);
    // AutoAttack (the default suite) holds no PGD stage, so only natural accuracy bounds it on
    // every CPU; the suite's stages are compared with each other in `eval::robustness`.
    assert!(a.evaluation.suite_accuracy <= a.evaluation.natural_accuracy);
    assert!(a.evaluation.pgd_accuracy <= a.evaluation.natural_accuracy);
    for plot in ["fig1-vulnerability-gap", "fig2-mi-bound"] {
        for ext in ["png", "svg"] {
            assert!(
                out.join(format!("plots/{plot}.{ext}")).is_file(),
                "{plot}.{ext}"
            );
        }
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        html.contains("<svg") && html.contains("second"),
        "report without figures"
    );

    let (ok, _, stderr) = compare(&[format!("x={model}"), format!("x={model}")]);
    assert!(!ok);
    assert!(
        stderr.contains("MODEL: two models are labelled 'x'"),
        "{stderr}"
    );
    let other = dir.path().join("other");
    let mut args = vec!["compare", &model, "--layer", "nope", "--dataset", root];
    args.extend(THREAT.iter().chain(CRITIC));
    args.extend(["--out", other.to_str().unwrap()]);
    let (ok, _, stderr) = wcmi(&args);
    assert!(!ok);
    assert!(
        stderr.contains("pooled_mlp.pt") && stderr.contains("method `nope`"),
        "{stderr}"
    );
    let (ok, _, stderr) = wcmi(&["compare", &model]);
    assert!(!ok);
    assert!(
        stderr.contains("--dataset") && stderr.contains("names no dataset"),
        "{stderr}"
    );
}
