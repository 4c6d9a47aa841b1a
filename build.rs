//! Builds the web console (`web-console/`, Vite) so that the server binary carries it: one
//! `cargo run` serves the caller chat and the staff console on a fresh machine.
//!
//! Needs Node.js and npm (the registry for `npm ci` on the first build). Set
//! `HOTLINE_SKIP_CONSOLE_BUILD=1` to use an existing `web-console/dist` as it is.

use std::path::Path;
use std::process::Command;

fn main() {
    for watched in [
        "web-console/src",
        "web-console/index.html",
        "web-console/console/index.html",
        "web-console/package.json",
        "web-console/package-lock.json",
        "web-console/vite.config.ts",
    ] {
        println!("cargo:rerun-if-changed={watched}");
    }
    println!("cargo:rerun-if-env-changed=HOTLINE_SKIP_CONSOLE_BUILD");

    let console = Path::new("web-console");
    let built = console.join("dist/index.html").exists();
    if std::env::var_os("HOTLINE_SKIP_CONSOLE_BUILD").is_some() && built {
        return;
    }
    if !console.join("node_modules").exists() {
        npm(console, &["ci", "--no-audit", "--no-fund"]);
    }
    npm(console, &["run", "build"]);
}

fn npm(dir: &Path, args: &[&str]) {
    let status = Command::new("npm").args(args).current_dir(dir).status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("`npm {}` in web-console failed ({s})", args.join(" ")),
        Err(e) => panic!(
            "building the web console needs Node.js and npm on the PATH (`npm {}`: {e})",
            args.join(" ")
        ),
    }
}
