//! Generate the C header with cbindgen (pinned). The header is written to
//! OUT_DIR; `make header` copies it to include/rewire.h, and a test fails when
//! the committed header differs from what the code generates.

use std::env;
use std::path::PathBuf;

fn main() {
    let crate_dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("rewire.h");
    let version = env::var("CARGO_PKG_VERSION").expect("cargo sets CARGO_PKG_VERSION");
    let major = env::var("CARGO_PKG_VERSION_MAJOR").expect("set");
    let minor = env::var("CARGO_PKG_VERSION_MINOR").expect("set");
    let patch = env::var("CARGO_PKG_VERSION_PATCH").expect("set");
    let mut config = cbindgen::Config::from_file(PathBuf::from(&crate_dir).join("cbindgen.toml"))
        .expect("cbindgen.toml is valid");
    let mut defines = format!(
        "\n#define REWIRE_VERSION \"{version}\"\n#define REWIRE_VERSION_MAJOR {major}\n#define REWIRE_VERSION_MINOR {minor}\n#define REWIRE_VERSION_PATCH {patch}\n\n// Functions returning a result (or a predicate) warn when the result is dropped\n// (define REWIRE_MUST_USE, e.g. empty, before including this header to change it).\n#ifndef REWIRE_MUST_USE\n#if defined(__GNUC__) || defined(__clang__)\n#define REWIRE_MUST_USE __attribute__((warn_unused_result))\n#else\n#define REWIRE_MUST_USE\n#endif\n#endif\n\n// Result codes: rewire-core's stable error codes (docs/protocol.md).\n"
    );
    defines.push_str(&error_defines(
        &PathBuf::from(&crate_dir).join("../rewire-core/src/error.rs"),
    ));
    config.after_includes = Some(defines);
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write_to_file(&out);
    // The shared library's SONAME: librewire.so.0.MINOR while the version is
    // 0.x (a 0.x minor may change the ABI), librewire.so.MAJOR after.
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        let soname = if major == "0" {
            format!("librewire.so.0.{minor}")
        } else {
            format!("librewire.so.{major}")
        };
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
    }
    // `rewire_baremetal`: the no_std bare-metal build (heap, panic handler,
    // rewire_init): OS "none" (RISC-V), and a no_std staticlib for a
    // -linux-gnu target: aarch64 bare metal (docs/building.md §4.1), and
    // x86_64 for the bare-metal C tests under valgrind and ASan.
    println!("cargo:rustc-check-cfg=cfg(rewire_baremetal)");
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let std = env::var_os("CARGO_FEATURE_STD").is_some();
    if os == "none" || (os == "linux" && !std) {
        println!("cargo:rustc-cfg=rewire_baremetal");
    }
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=../rewire-core/src/error.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rustc-env=REWIRE_GENERATED_HEADER={}", out.display());
    println!(
        "cargo:rustc-env=REWIRE_TEST_TARGET={}",
        env::var("TARGET").expect("cargo sets TARGET")
    );
}

/// `#define REWIRE_ERR_<NAME> <code>` for each variant `Name = code,` of
/// rewire-core's `enum Error`, so the header can never disagree with the core.
fn error_defines(path: &std::path::Path) -> String {
    let src = std::fs::read_to_string(path).expect("rewire-core/src/error.rs is readable");
    let body = src
        .split("pub enum Error {")
        .nth(1)
        .and_then(|s| s.split("\n}").next())
        .expect("enum Error in error.rs");
    let mut out = String::new();
    let mut doc = String::new();
    for line in body.lines().map(str::trim) {
        if let Some(d) = line.strip_prefix("///") {
            if !doc.is_empty() {
                doc.push(' ');
            }
            doc.push_str(d.trim());
            continue;
        }
        let Some((name, code)) = line.trim_end_matches(',').split_once(" = ") else {
            continue;
        };
        let mut upper = String::new();
        for (i, ch) in name.chars().enumerate() {
            if ch.is_uppercase() && i > 0 {
                upper.push('_');
            }
            upper.push(ch.to_ascii_uppercase());
        }
        out.push_str(&format!("// {doc}\n#define REWIRE_ERR_{upper} {code}\n"));
        doc.clear();
    }
    assert!(out.contains("REWIRE_ERR_DECODE 100"), "error codes parsed");
    out
}
