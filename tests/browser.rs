//! The web console end to end: the real server, the built console, headless Chromium driven by
//! `playwright-core` (`web-console/e2e/`). Screenshots of every screen in both languages are kept
//! in `target/e2e-artifacts/`.
//!
//! Needs Debian's `chromium` (`CHROMIUM_PATH` to override) and the console's npm packages
//! (`build.rs` installs them). Without a browser the test is skipped — except under `CI`,
//! where it fails: `.ci/run` installs the browser.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Backend, fresh_database};
use hotline::config::Settings;
use hotline::domain::{Language, Role, Timestamp};
use hotline::store::NewAccount;
use tokio_util::sync::CancellationToken;

const PASSWORD: &str = "a long e2e password";

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("CHROMIUM_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    path.exists().then_some(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_story_in_a_browser() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but Chromium is missing: .ci/run must install it"
        );
        eprintln!("Chromium not installed; browser tests skipped outside CI");
        return;
    };
    let db = fresh_database(Backend::Sqlite).await.unwrap();
    let store = db.connect().await;
    for (name, role) in [
        ("op", Role::Operator),
        ("lead", Role::CrisisLead),
        ("sup", Role::Supervisor),
        ("boss", Role::Admin),
    ] {
        store
            .create_account(
                NewAccount {
                    name: name.into(),
                    display_name: name.into(),
                    role,
                    password_hash: hotline::auth::hash_password(PASSWORD.into()).await.unwrap(),
                    languages: vec![
                        Language::parse("zh").unwrap(),
                        Language::parse("en").unwrap(),
                    ],
                    chat_capacity: 1,
                    voice_capacity: 1,
                    voice_excludes_chat: true,
                    must_change_password: false,
                },
                Timestamp::now(),
            )
            .await
            .unwrap();
    }
    let mut settings = Settings::default();
    settings.database.url = db.url().to_owned();
    settings.auth.logins_per_minute = 1_000;
    settings.caller.joins_per_minute = 1_000;
    // Short pages, so that the story reads a long conversation back a page at a time.
    settings.caller.transcript_page_lines = 2.try_into().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(hotline::run(listener, settings, shutdown.clone()));

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let artifacts = root.join("target/e2e-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let status = tokio::process::Command::new("npm")
        .args(["run", "--silent", "e2e"])
        .current_dir(root.join("web-console"))
        .env("HOTLINE_URL", &base)
        .env("HOTLINE_E2E_PASSWORD", PASSWORD)
        .env("HOTLINE_E2E_ARTIFACTS", &artifacts)
        .env("CHROMIUM_PATH", &browser)
        .status()
        .await
        .expect("npm runs the browser tests");
    shutdown.cancel();
    let _ = server.await;
    assert!(
        status.success(),
        "the browser story failed (screenshots in {})",
        artifacts.display()
    );
    let shots = std::fs::read_dir(&artifacts).unwrap().count();
    assert!(
        shots >= 10,
        "screenshots of each screen in both languages ({shots} found)"
    );
}

/// The console's generated protocol types are current with `proto/`.
#[test]
fn console_types_match_proto() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new("node")
        .args(["scripts/gen-proto.mjs", "--check"])
        .current_dir(root.join("web-console"))
        .status()
        .expect("node runs");
    assert!(
        status.success(),
        "web-console/src/proto is stale: run `npm run proto` in web-console"
    );
}
