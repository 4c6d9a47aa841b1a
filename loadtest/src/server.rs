//! The hotline server (and the echo server) as child processes, on 127.0.0.1, each with a fresh
//! data directory; accounts made with `hotline user add`; sign-in; RSS and CPU of a process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, anyhow, bail, ensure};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;
use tokio::process::{Child, Command};

use crate::ws::{self, Ws};

/// Password of every benchmark account.
pub const PASSWORD: &str = "load test password 0123";
/// The administrator the benchmarks use to give operators a language and a chat capacity.
pub const ADMIN: &str = "bench.admin";

/// `$CARGO_TARGET_DIR/release/hotline` when that is set, else `target/release/hotline`.
pub fn default_server_bin() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("release").join("hotline"),
        _ => PathBuf::from("target/release/hotline"),
    }
}

/// A free port on 127.0.0.1 (bound, read and released: the child binds it right after).
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A directory under the system's temporary directory, removed on drop unless kept.
pub struct TempDir {
    pub path: PathBuf,
    pub keep: bool,
}

impl TempDir {
    pub fn new(prefix: &str) -> Result<TempDir> {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(TempDir { path, keep: false })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("kept {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Settings a benchmark gives the server on top of the data directory and address.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub bin: PathBuf,
    /// Accounts to create before the first start: `(name, role)`.
    pub accounts: Vec<(String, &'static str)>,
    /// Extra `HOTLINE__…` variables (the abuse limits a benchmark must raise).
    pub env: Vec<(String, String)>,
    pub keep_data: bool,
    /// An empty database for the server; `None`: a new SQLite file in the temporary directory.
    pub database_url: Option<String>,
}

/// The running server.
pub struct Hotline {
    child: Child,
    pub addr: SocketAddr,
    pub dir: TempDir,
    http: reqwest::Client,
}

impl Hotline {
    pub async fn start(config: &ServerConfig) -> Result<Hotline> {
        let bin = std::fs::canonicalize(&config.bin).with_context(|| {
            format!(
                "the server binary {} (build it: cargo build --release --workspace)",
                config.bin.display()
            )
        })?;
        let mut dir = TempDir::new("hotline-loadtest")?;
        dir.keep = config.keep_data;
        let port = free_port()?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let env = base_env(&dir.path, config.database_url.as_deref(), addr, &config.env);

        let started = Instant::now();
        create_accounts(&bin, &dir.path, &env, &config.accounts).await?;
        eprintln!(
            "  created {} accounts with `hotline user add` in {:.1} s",
            config.accounts.len(),
            started.elapsed().as_secs_f64()
        );

        let log = std::fs::File::create(dir.path.join("server.log"))?;
        let child = Command::new(&bin)
            .arg("serve")
            .current_dir(&dir.path)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let server = Hotline {
            child,
            addr,
            dir,
            http: reqwest::Client::new(),
        };
        server.wait_healthy().await?;
        Ok(server)
    }

    async fn wait_healthy(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(r) = self.http.get(self.url("/healthz")).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "the server did not answer /healthz within 30 s (log: {})",
            self.dir.path.join("server.log").display()
        )
    }

    pub fn pid(&self) -> Result<u32> {
        self.child
            .id()
            .ok_or_else(|| anyhow!("the server has exited"))
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    pub async fn metrics(&self) -> Result<String> {
        Ok(self
            .http
            .get(self.url("/metrics"))
            .send()
            .await?
            .text()
            .await?)
    }

    /// Signs in; returns the session cookie (`name=value`).
    pub async fn login(&self, name: &str) -> Result<String> {
        login(&self.http, &self.url("/api/login"), name).await
    }

    /// Gives every named operator the language `zh` and `chat_capacity` (as the admin:
    /// `hotline user add` makes accounts without languages, which no contact can be routed to).
    pub async fn prepare_operators(&self, names: &[String], chat_capacity: u8) -> Result<()> {
        let admin = reqwest::Client::builder().cookie_store(true).build()?;
        let response = admin
            .post(self.url("/api/login"))
            .json(&json!({"name": ADMIN, "password": PASSWORD}))
            .send()
            .await?;
        ensure!(
            response.status().is_success(),
            "admin login: {}",
            response.status()
        );
        let accounts: Vec<Value> = admin
            .get(self.url("/api/admin/accounts"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        for name in names {
            let id = accounts
                .iter()
                .find(|a| a["name"] == name.as_str())
                .and_then(|a| a["id"].as_i64())
                .ok_or_else(|| anyhow!("account {name} not found"))?;
            admin
                .patch(self.url(&format!("/api/admin/accounts/{id}")))
                .json(&json!({"languages": ["zh"], "chat_capacity": chat_capacity}))
                .send()
                .await?
                .error_for_status()
                .with_context(|| format!("setting up {name}"))?;
        }
        Ok(())
    }

    /// Signs `name` in and opens their console; returns it after `hello`.
    pub async fn staff(&self, name: &str) -> Result<Ws> {
        let cookie = self.login(name).await?;
        let mut ws = ws::connect(&self.ws_url("/ws/staff"), Some(&cookie)).await?;
        ws::expect(&mut ws, "hello").await?;
        Ok(ws)
    }

    /// A caller socket after `hello`.
    pub async fn caller(&self) -> Result<Ws> {
        let mut ws = ws::connect(&self.ws_url("/ws/caller"), None).await?;
        ws::expect(&mut ws, "hello").await?;
        Ok(ws)
    }

    /// SIGTERM, then wait (at most 15 s) for a clean exit; killed otherwise.
    pub async fn stop(mut self) -> Result<()> {
        stop_child(&mut self.child, "hotline").await
    }
}

/// Stops a child this program started: SIGTERM to its pid, a wait, then SIGKILL.
pub async fn stop_child(child: &mut Child, what: &str) -> Result<()> {
    if let Some(pid) = child.id() {
        let pid = libc::pid_t::try_from(pid)?;
        // SAFETY: kill(2) with a pid of our own child and a valid signal number.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    match tokio::time::timeout(Duration::from_secs(15), child.wait()).await {
        Ok(status) => {
            let status = status?;
            if !status.success() {
                eprintln!("  note: {what} exited with {status}");
            }
        }
        Err(_) => {
            eprintln!("  note: {what} did not stop within 15 s; killing it");
            child.kill().await?;
        }
    }
    Ok(())
}

fn base_env(
    dir: &Path,
    database_url: Option<&str>,
    addr: SocketAddr,
    extra: &[(String, String)],
) -> Vec<(String, String)> {
    let database_url = database_url.map_or_else(
        || format!("sqlite://{}", dir.join("hotline.db").display()),
        str::to_owned,
    );
    let mut env = vec![
        ("HOTLINE__DATABASE__URL".to_owned(), database_url),
        ("HOTLINE__SERVER__LISTEN".to_owned(), addr.to_string()),
    ];
    env.extend(extra.iter().cloned());
    env
}

/// `hotline user add --name N --role R` with the password on standard input, two at a time.
async fn create_accounts(
    bin: &Path,
    dir: &Path,
    env: &[(String, String)],
    accounts: &[(String, &'static str)],
) -> Result<()> {
    // The schema first: two `user add` on a fresh database would both try to create it.
    let migrate = Command::new(bin)
        .arg("migrate")
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("HOTLINE_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .await
        .context("running hotline migrate")?;
    ensure!(
        migrate.status.success(),
        "hotline migrate: {}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
    for chunk in accounts.chunks(parallel) {
        let mut children = Vec::new();
        for (name, role) in chunk {
            let mut child = Command::new(bin)
                .args(["user", "add", "--name", name, "--role", role])
                .current_dir(dir)
                .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .env("HOTLINE_LOG", "warn")
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .context("running hotline user add")?;
            let mut stdin = child.stdin.take().ok_or_else(|| anyhow!("no stdin"))?;
            stdin.write_all(PASSWORD.as_bytes()).await?;
            drop(stdin);
            children.push((name, child));
        }
        for (name, child) in children {
            let out = child.wait_with_output().await?;
            ensure!(
                out.status.success(),
                "hotline user add {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(())
}

pub async fn login(http: &reqwest::Client, url: &str, name: &str) -> Result<String> {
    let response = http
        .post(url)
        .json(&json!({"name": name, "password": PASSWORD}))
        .send()
        .await?;
    ensure!(
        response.status().is_success(),
        "login {name}: {}",
        response.status()
    );
    let cookie = response
        .headers()
        .get("set-cookie")
        .ok_or_else(|| anyhow!("login {name}: no session cookie"))?
        .to_str()?;
    Ok(cookie.split(';').next().unwrap_or_default().to_owned())
}

/// Resident set size of a process, in bytes (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_bytes(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or_else(|| anyhow!("no VmRSS for {pid}"))?;
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| anyhow!("bad VmRSS line"))?
        .parse()?;
    Ok(kb * 1024)
}

/// CPU time (user + system) a process has used so far (`/proc/<pid>/stat`); `None` for self.
pub fn cpu_seconds(pid: Option<u32>) -> Result<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path)?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow!("bad stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat(5); `rest` starts at field 3.
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Ok(ticks as f64 / hz.max(1) as f64)
}

/// CPU use of a process over an interval, in % of one core.
pub struct CpuMeter {
    pid: Option<u32>,
    cpu: f64,
    at: Instant,
}

impl CpuMeter {
    pub fn start(pid: Option<u32>) -> CpuMeter {
        CpuMeter {
            pid,
            cpu: cpu_seconds(pid).unwrap_or(0.0),
            at: Instant::now(),
        }
    }

    pub fn percent(&self) -> f64 {
        let used = cpu_seconds(self.pid).unwrap_or(self.cpu) - self.cpu;
        100.0 * used / self.at.elapsed().as_secs_f64()
    }
}

/// Raises this process's open-file limit to its hard limit; returns the new soft limit.
pub fn raise_nofile_limit() -> Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid resource and a pointer to a live rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            bail!("getrlimit: {}", std::io::Error::last_os_error());
        }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                bail!("setrlimit: {}", std::io::Error::last_os_error());
            }
        }
    }
    Ok(limit.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_rss_and_cpu() {
        let rss = rss_bytes(std::process::id()).unwrap();
        assert!(rss > 100_000, "{rss}");
        assert!(cpu_seconds(None).unwrap() >= 0.0);
        assert!(raise_nofile_limit().unwrap() >= 64);
    }
}
