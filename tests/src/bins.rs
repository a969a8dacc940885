//! Where the workspace's binaries were built. Tests run from
//! `target/<profile>/deps/`, the binaries sit one folder up; build them first
//! (`cargo build --workspace`), as `scripts/test.sh` does.

use std::path::PathBuf;

/// The folder holding `prism-proxy` and the pattern binaries
/// (`PRISM_BIN_DIR` overrides).
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PRISM_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("test binary folder");
    if deps.ends_with("deps") {
        deps.parent().expect("profile folder").to_path_buf()
    } else {
        deps.to_path_buf()
    }
}

/// Path of a built binary; panics with the fix when it is missing.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.is_file(),
        "{} is not built: run `cargo build --workspace` first (scripts/test.sh does)",
        path.display()
    );
    path
}
