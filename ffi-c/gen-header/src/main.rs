//! Writes the C header for `ffi-c` with the pinned cbindgen.
//!
//! `cargo run -p polyctx-gen-header -- OUT.h` (the Makefile's `make header-c`
//! writes include/ctx.h; `make test` writes build/c/ctx.h and diffs it).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out] = args.as_slice() else {
        eprintln!("usage: polyctx-gen-header OUT.h");
        return ExitCode::from(2);
    };
    let crate_dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let config = match cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gen-header: {e}");
            return ExitCode::FAILURE;
        }
    };
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/lib.rs"))
        .generate();
    match bindings {
        Ok(b) => {
            b.write_to_file(out);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gen-header: {e}");
            ExitCode::FAILURE
        }
    }
}
