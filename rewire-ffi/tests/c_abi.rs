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

/// `target/<profile>`, where this test binary is.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

/// `cargo build -q -p rewire-ffi --lib` with `args`, once per `once`; then
/// `lib` must exist.
fn cargo_build_lib(once: &'static std::sync::Once, args: &[&str], lib: PathBuf) -> PathBuf {
    once.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-q", "-p", "rewire-ffi", "--lib"])
            .args(args)
            .arg("--manifest-path")
            .arg(root().join("Cargo.toml"))
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building {} failed", lib.display());
    });
    assert!(lib.exists(), "{} not built", lib.display());
    lib
}

/// The static library, next to this test binary. `cargo test` builds the
/// library only as an rlib for its tests, so build the staticlib (same
/// profile: `dev` builds into `debug`, so that a mutated or optimised build
/// tests itself) when it is not there yet.
fn staticlib() -> PathBuf {
    static BUILD: std::sync::Once = std::sync::Once::new();
    let dir = profile_dir();
    let profile = match dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => vec![],
        Some(profile) => vec!["--profile".to_string(), profile.to_string()],
    };
    let profile: Vec<&str> = profile.iter().map(String::as_str).collect();
    cargo_build_lib(&BUILD, &profile, dir.join("librewire.a"))
}

/// The bare-metal (no_std) archive built for x86_64 Linux: the same code as
/// on RISC-V and aarch64 (`rewire_init`, the allocator, the panic handler,
/// the before-init refusals), linked with the C library so it runs here.
fn baremetal_staticlib() -> PathBuf {
    static BUILD: std::sync::Once = std::sync::Once::new();
    let target_dir = profile_dir().parent().expect("target/").to_path_buf();
    let triple = "x86_64-unknown-linux-gnu";
    let lib = target_dir.join(triple).join("baremetal/librewire.a");
    let dir = target_dir.to_str().expect("a UTF-8 target directory");
    let args = [
        "--no-default-features",
        "--features",
        "log",
        "--profile",
        "baremetal",
        "--target",
        triple,
        "--target-dir",
        dir,
    ];
    cargo_build_lib(&BUILD, &args, lib)
}

fn build_and_run(source: &str, name: &str) -> String {
    build_and_run_with(source, name, staticlib(), &[])
}

fn build_and_run_with(source: &str, name: &str, lib: PathBuf, defines: &[&str]) -> String {
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
        .args(defines.iter().map(|d| format!("-D{d}")))
        .arg("-I")
        .arg(root().join("include"))
        .arg(root().join(source))
        .arg(lib)
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&exe)
        .status()
        .expect("C compiler runs");
    assert!(status.success(), "compiling {source} failed");
    // A bare-metal build that hits a bug spins (no on_panic yet): bound the run.
    let mut child = Command::new(&exe)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while child.try_wait().expect("waits").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{name} still running after 120 s (spinning?)");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
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

/// tests/c/baremetal.c: calls before `rewire_init` refused, `rewire_init_with`'s
/// checks, allocator hooks, `on_panic` told the message (also run under
/// valgrind and ASan by `make c-tests`, and with no OS under QEMU).
#[test]
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn c_baremetal_entry_points() {
    let out = build_and_run_with(
        "tests/c/baremetal.c",
        "baremetal",
        baremetal_staticlib(),
        &["REWIRE_BAREMETAL"],
    );
    assert!(out.contains("0 bytes live"), "{out}");
    assert!(out.trim_end().ends_with("OK"), "{out}");
}

#[test]
fn c_negative_inputs_give_documented_codes() {
    let out = build_and_run("tests/c/negative.c", "negative");
    assert!(out.contains("all passed"), "{out}");
}
