//! A real SMTP server for the mail tests: aiosmtpd (from PyPI) in a process of its own, on a port the OS
//! picks, keeping every message it accepts as a file (`tests/smtp/server.py`).

use std::{
    path::PathBuf,
    process::Stdio,
    sync::{Mutex, OnceLock},
};

use tokio::{
    io::{AsyncBufReadExt as _, BufReader, Lines},
    process::{Child, ChildStdout, Command},
};

/// The Python that has aiosmtpd: `AEROBOOK_TEST_SMTP_PYTHON` (scripts/test sets it), else what
/// `scripts/ensure-aiosmtpd` installs (once per test binary).
fn python() -> String {
    static PYTHON: OnceLock<String> = OnceLock::new();
    static INSTALLING: Mutex<()> = Mutex::new(());
    if let Some(python) = PYTHON.get() {
        return python.clone();
    }
    let _one_at_a_time = INSTALLING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    PYTHON
        .get_or_init(|| {
            if let Ok(python) = std::env::var("AEROBOOK_TEST_SMTP_PYTHON") {
                return python;
            }
            let script = repository().join("scripts/ensure-aiosmtpd");
            let output = std::process::Command::new(&script).output().expect("run scripts/ensure-aiosmtpd");
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            String::from_utf8(output.stdout).expect("a path").trim().to_owned()
        })
        .clone()
}

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub struct SmtpServer {
    port: u16,
    mail_dir: tempfile::TempDir,
    /// The server writes a line per message it accepts (and, when slow, one as each message starts).
    announcements: Lines<BufReader<ChildStdout>>,
    _process: Child,
}

impl SmtpServer {
    /// Starts the server and returns once it accepts connections (it prints its port then).
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// A server that takes `delay` over each message's data.
    pub async fn slow(delay: std::time::Duration) -> Self {
        Self::start_with(&["--delay-ms", &delay.as_millis().to_string()]).await
    }

    /// Returns once a slow server has started receiving a message.
    pub async fn receiving(&mut self) {
        let line = self.announcements.next_line().await.expect("the SMTP server's output");
        assert_eq!(line.as_deref(), Some("receiving"));
    }

    /// Returns once the server has accepted its next message (waits for it).
    pub async fn accepted(&mut self) {
        loop {
            let line = self.announcements.next_line().await.expect("the SMTP server's output");
            match line.as_deref() {
                Some("receiving") => continue,
                Some(_) => return,
                None => panic!("the SMTP server stopped"),
            }
        }
    }

    async fn start_with(options: &[&str]) -> Self {
        let mail_dir = tempfile::tempdir().expect("temporary directory");
        let mut process = Command::new(python())
            .arg(repository().join("tests/smtp/server.py"))
            .arg(mail_dir.path())
            .args(options)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the SMTP server");
        let mut lines = BufReader::new(process.stdout.take().expect("piped stdout")).lines();
        let first_line = lines.next_line().await.expect("the SMTP server's output").unwrap_or_default();
        let port = first_line.trim().parse().unwrap_or_else(|_| panic!("not a port: {first_line:?}"));
        Self { port, mail_dir, announcements: lines, _process: process }
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    /// `smtp://127.0.0.1:<port>`: plain SMTP, as `AEROBOOK_SMTP_URL` takes it.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr())
    }

    /// Every message accepted so far, as received, in order of arrival.
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.mail_dir.path())
            .expect("mail directory")
            .map(|entry| entry.expect("directory entry").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
            .collect();
        files.sort();
        files.into_iter().map(|path| std::fs::read_to_string(path).expect("message")).collect()
    }
}
