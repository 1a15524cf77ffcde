//! HAProxy with the repository's `deploy/haproxy.cfg` in front of some nodes, on a free port:
//! shared by the balancer tests (`tests/api/balancer/`) and ws_load's `BALANCER=1`, which both
//! include this file by path.

use std::path::Path;

/// Writes the config for `addresses` (`host:port` each) into `dir`, starts HAProxy on a free
/// local port; the process (killed when dropped) and its `http://` base.
pub fn spawn(addresses: &[&str], dir: &Path) -> (tokio::process::Child, String) {
    let mut config =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/haproxy.cfg"))
            .expect("deploy/haproxy.cfg");
    for (i, address) in addresses.iter().enumerate() {
        config.push_str(&format!("    server node{i} {address} check\n"));
    }
    std::fs::create_dir_all(dir).expect("a directory for the config");
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, config).expect("the config written");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    // Debian puts it in /usr/sbin, which a user's PATH may not have.
    let bin = if Path::new("/usr/sbin/haproxy").exists() {
        "/usr/sbin/haproxy"
    } else {
        "haproxy"
    };
    let process = tokio::process::Command::new(bin)
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .env("CLUSTER_BIND", format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("haproxy (scripts/setup.sh installs it)");
    (process, format!("http://127.0.0.1:{port}"))
}
