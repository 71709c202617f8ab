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
    let mut config = match cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gen-header: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The version macros, then whatever cbindgen.toml puts after the includes.
    let configured = config.after_includes.take().unwrap_or_default();
    config.after_includes = Some(format!("{}{configured}", version_macros()));
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

/// The header's version macros. This crate's version is the workspace's, as
/// is libctx's, so `CTX_VERSION` equals what `ctx_version()` returns when
/// header and library come from the same release (`make lint-version`
/// checks every place the version appears).
fn version_macros() -> String {
    format!(
        "\n/* This header's version, \"MAJOR.MINOR.PATCH\", and its parts for #if. ctx_version()\n \
         * is the library's; the two are equal when header and library come from one release. */\n\
         #define CTX_VERSION \"{}\"\n\
         #define CTX_VERSION_MAJOR {}\n\
         #define CTX_VERSION_MINOR {}\n\
         #define CTX_VERSION_PATCH {}",
        env!("CARGO_PKG_VERSION"),
        env!("CARGO_PKG_VERSION_MAJOR"),
        env!("CARGO_PKG_VERSION_MINOR"),
        env!("CARGO_PKG_VERSION_PATCH"),
    )
}
