//! A real SMTP server for the tests: aiosmtpd (Python), storing every message it receives in a
//! maildir. It can be paused (SIGSTOP: connections are accepted by the kernel but get no
//! greeting, as a hung mail server looks) and resumed.

use std::path::PathBuf;
use std::time::Duration;

use super::{free_port, random_suffix, signal, wait_until};

/// aiosmtpd on a port of its own; killed when dropped.
pub struct SmtpServer {
    pub port: u16,
    pub maildir: PathBuf,
    child: tokio::process::Child,
}

impl SmtpServer {
    pub async fn start() -> Self {
        let port = free_port();
        // aiosmtpd creates the maildir (with its tmp/new/cur) only if the path does not exist.
        let maildir = std::env::temp_dir().join(format!("vrooli-maildir-{}", random_suffix()));
        let child = tokio::process::Command::new("python3")
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(&maildir)
            .kill_on_drop(true)
            .spawn()
            .expect("python3 with aiosmtpd (scripts/test.sh installs it)");
        wait_until(Duration::from_secs(20), "aiosmtpd to listen", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await;
        Self {
            port,
            maildir,
            child,
        }
    }

    /// The messages delivered so far, as they were received.
    pub fn messages(&self) -> Vec<String> {
        std::fs::read_dir(self.maildir.join("new"))
            .map(|dir| {
                dir.filter_map(|e| e.ok())
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// SIGSTOP: from now on no client gets as far as the greeting.
    pub fn pause(&self) {
        signal(self.child.id().expect("running"), "-STOP");
    }

    /// SIGCONT: it serves again, starting with the connections that waited.
    pub fn resume(&self) {
        signal(self.child.id().expect("running"), "-CONT");
    }
}
