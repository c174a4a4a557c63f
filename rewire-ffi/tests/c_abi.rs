//! The C side of the ABI: the committed header is what the code generates,
//! its version macros match Cargo.toml, and the C example and the C negative
//! tests, compiled by the `cc` crate against `include/rewire.h` and
//! `librewire.a`, run and pass.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn committed_header_is_current() {
    let generated =
        std::fs::read_to_string(env!("REWIRE_GENERATED_HEADER")).expect("generated header");
    let committed =
        std::fs::read_to_string(root().join("include/rewire.h")).expect("include/rewire.h");
    assert!(
        generated == committed,
        "include/rewire.h is stale: run `make header` and commit it"
    );
}

#[test]
fn version_macros_match_cargo_toml() {
    let h = std::fs::read_to_string(root().join("include/rewire.h")).expect("header");
    let get = |name: &str| {
        h.lines()
            .find_map(|l| l.strip_prefix(&format!("#define {name} ")))
            .unwrap_or_else(|| panic!("{name} missing"))
            .trim_matches('"')
            .to_string()
    };
    assert_eq!(get("REWIRE_VERSION"), env!("CARGO_PKG_VERSION"));
    assert_eq!(get("REWIRE_VERSION_MAJOR"), env!("CARGO_PKG_VERSION_MAJOR"));
    assert_eq!(get("REWIRE_VERSION_MINOR"), env!("CARGO_PKG_VERSION_MINOR"));
    assert_eq!(get("REWIRE_VERSION_PATCH"), env!("CARGO_PKG_VERSION_PATCH"));
    // Every core error code is in the header, with its number.
    for e in rewire_core::Error::ALL {
        assert!(
            h.contains(&format!(" {}\n", e.code())),
            "code {} missing from the header",
            e.code()
        );
    }
}

/// The static library, next to this test binary. `cargo test` builds the
/// library only as an rlib for its tests, so build the staticlib (same
/// profile) when it is not there yet.
fn staticlib() -> PathBuf {
    static BUILD: std::sync::Once = std::sync::Once::new();
    let exe = std::env::current_exe().expect("test exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let lib = dir.join("librewire.a");
    BUILD.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "-q",
            "-p",
            "rewire-ffi",
            "--lib",
            "--manifest-path",
        ])
        .arg(root().join("Cargo.toml"));
        // The same profile as this test (`target/<profile>`; `dev` builds
        // into `debug`), so that a mutated or optimised build tests itself.
        match dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => {}
            Some(profile) => {
                cmd.args(["--profile", profile]);
            }
        }
        let status = cmd.status().expect("cargo runs");
        assert!(status.success(), "building librewire.a failed");
    });
    assert!(lib.exists(), "{} not built", lib.display());
    lib
}

fn build_and_run(source: &str, name: &str) -> String {
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let exe = out_dir.join(name);
    let compiler = cc::Build::new()
        .opt_level(1)
        .warnings(true)
        .cargo_metadata(false)
        .target(env!("REWIRE_TEST_TARGET"))
        .host(env!("REWIRE_TEST_TARGET"))
        .get_compiler();
    let status = compiler
        .to_command()
        .arg("-Wall")
        .arg("-Wextra")
        .arg("-Werror")
        .arg("-I")
        .arg(root().join("include"))
        .arg(root().join(source))
        .arg(staticlib())
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&exe)
        .status()
        .expect("C compiler runs");
    assert!(status.success(), "compiling {source} failed");
    let out = Command::new(&exe).output().expect("runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name} failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn c_example_migrates_and_source_refuses_to_resume() {
    let out = build_and_run("examples/c/migrate.c", "migrate");
    assert!(out.contains("byte-exact: yes"), "{out}");
    assert!(out.contains("may run: no"), "{out}");
    assert!(out.trim_end().ends_with("OK"), "{out}");
}

#[test]
fn c_negative_inputs_give_documented_codes() {
    let out = build_and_run("tests/c/negative.c", "negative");
    assert!(out.contains("all passed"), "{out}");
}
