//! The `tessera` binary runs with the jemalloc options compiled into it, whatever the
//! environment of its build.

#![cfg(all(target_os = "linux", not(target_env = "msvc")))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn the_binary_runs_with_its_compiled_in_jemalloc_options() {
    // `stats_print` makes jemalloc print its options (among its statistics) at exit; the
    // prefixed jemalloc of `tikv-jemalloc-sys` reads `_RJEM_MALLOC_CONF`.
    let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("--version")
        .env("_RJEM_MALLOC_CONF", "stats_print:true")
        .output()
        .expect("run tessera --version");
    assert!(output.status.success(), "{output:?}");
    let stats = String::from_utf8_lossy(&output.stderr);
    for option in [
        "opt.dirty_decay_ms: 1000",
        "opt.muzzy_decay_ms: 0",
        "opt.background_thread: true",
    ] {
        assert!(
            stats
                .lines()
                .any(|line| line.trim_start().starts_with(option)),
            "{option} missing from jemalloc's statistics:\n{stats}"
        );
    }
}
