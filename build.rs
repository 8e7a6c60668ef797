//! Finds each channel's gateway-level tests (`connectors/<name>/tests/gateway.rs`) and lists
//! them as modules of the one integration test binary, so a new channel's end-to-end tests
//! live in its own folder and need no line in `tests/main.rs`.

use std::fmt::Write as _;
use std::path::Path;
use std::{env, fs};

fn main() {
    let root = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let connectors = Path::new(&root).join("connectors");
    println!("cargo:rerun-if-changed={}", connectors.display());
    let mut folders: Vec<_> = fs::read_dir(&connectors)
        .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
        .unwrap_or_default();
    folders.sort();
    let mut modules = String::new();
    for folder in folders {
        let tests = folder.join("tests").join("gateway.rs");
        if !tests.is_file() {
            continue;
        }
        let name = folder
            .file_name()
            .and_then(|name| name.to_str())
            .expect("connector folders have UTF-8 names")
            .replace(['-', '.'], "_");
        // Debug formatting escapes the path into a valid string literal on every platform.
        writeln!(
            modules,
            "#[path = {:?}]\nmod {name}_gateway;",
            tests.display().to_string()
        )
        .expect("writing to a String");
    }
    let out = Path::new(&env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("channel_tests.rs");
    fs::write(out, modules).expect("OUT_DIR is writable");
}
