//! The Rust core's conformance runner: executes scenario files
//! (tests/conformance/FORMAT.md) and prints one line per observation, which
//! `check.py` compares with what Go's own `context` printed.

mod scenario;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for path in std::env::args().skip(1) {
        let source = match std::fs::read_to_string(&path) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("polyctx-conformance: cannot read {path}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let name = Path::new(&path)
            .file_stem()
            .map_or(path.clone(), |s| s.to_string_lossy().into_owned());
        for line in scenario::run(&name, &source) {
            writeln!(out, "{line}").expect("stdout");
        }
    }
    ExitCode::SUCCESS
}
