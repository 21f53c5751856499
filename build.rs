//! Makes the binaries find libtorch without `LD_LIBRARY_PATH`.
//!
//! `.cargo/config.toml` points `LIBTORCH` at the wheel installed by `scripts/setup-libtorch.sh`.
//! We embed an rpath to its `lib/` folder. torch-sys links `torch_cuda`, but the linker's
//! `--as-needed` drops it because no symbol of it is referenced; when the CUDA libraries of the
//! full install are present we link it with `--no-as-needed` so that `--device cuda` works.
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-changed=build.rs");
    let Some(libtorch) = std::env::var_os("LIBTORCH") else {
        return;
    };
    let lib = PathBuf::from(libtorch).join("lib");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    if cuda_libraries_present(&lib) {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-L{}", lib.display());
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}

/// The light CPU install ships `libtorch_cuda.so` but not cuBLAS; only the full install has both.
fn cuda_libraries_present(lib: &Path) -> bool {
    if !lib.join("libtorch_cuda.so").exists() {
        return false;
    }
    let Some(site) = lib.parent().and_then(Path::parent) else {
        return false;
    };
    let Ok(packages) = std::fs::read_dir(site.join("nvidia")) else {
        return false;
    };
    packages.flatten().any(|package| {
        std::fs::read_dir(package.path().join("lib"))
            .map(|files| {
                files
                    .flatten()
                    .any(|f| f.file_name().to_string_lossy().starts_with("libcublas.so"))
            })
            .unwrap_or(false)
    })
}
