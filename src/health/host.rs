//! Readings of the host: memory, CPU, disk, and this process's resident memory. sysinfo reads
//! `/proc` synchronously, so every reading runs on the blocking pool. One `System` is kept
//! between readings because CPU usage is the difference between two samples.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use sysinfo::{Disks, ProcessRefreshKind, ProcessesToUpdate, System};

#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryReading {
    pub total_bytes: u64,
    pub available_bytes: u64,
    pub process_rss_bytes: u64,
}

impl MemoryReading {
    pub fn used_percent(&self) -> f64 {
        percent(
            self.total_bytes.saturating_sub(self.available_bytes),
            self.total_bytes,
        )
    }
}

#[derive(Debug, Clone, Default)]
pub struct SystemReading {
    pub cpu_percent: f64,
    pub cpus: usize,
    pub load_one: f64,
    pub disk_mount: String,
    pub disk_total_bytes: u64,
    pub disk_available_bytes: u64,
}

impl SystemReading {
    pub fn disk_used_percent(&self) -> f64 {
        percent(
            self.disk_total_bytes
                .saturating_sub(self.disk_available_bytes),
            self.disk_total_bytes,
        )
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

#[derive(Clone)]
pub struct HostProbe {
    system: Arc<Mutex<Option<System>>>,
    /// The disk that matters is the one we write to: the working directory's.
    workdir: PathBuf,
}

impl Default for HostProbe {
    fn default() -> Self {
        Self::new()
    }
}

impl HostProbe {
    pub fn new() -> Self {
        Self {
            system: Arc::new(Mutex::new(None)),
            workdir: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
        }
    }

    fn with_system<T>(&self, read: impl FnOnce(&mut System) -> T) -> Option<T> {
        // A poisoned lock only means an earlier reading panicked; the System is still usable.
        let mut guard = self.system.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            *guard = System::new().ok();
        }
        guard.as_mut().map(read)
    }

    pub async fn memory(&self) -> Option<MemoryReading> {
        let probe = self.clone();
        tokio::task::spawn_blocking(move || {
            probe.with_system(|sys| {
                sys.refresh_memory();
                let rss = sysinfo::get_current_pid().ok().and_then(|pid| {
                    sys.refresh_processes_specifics(
                        ProcessesToUpdate::Some(&[pid]),
                        false,
                        ProcessRefreshKind::nothing().with_memory(),
                    );
                    sys.process(pid).map(|p| p.memory())
                });
                MemoryReading {
                    total_bytes: sys.total_memory(),
                    available_bytes: sys.available_memory(),
                    process_rss_bytes: rss.unwrap_or(0),
                }
            })
        })
        .await
        .ok()
        .flatten()
    }

    pub async fn system(&self) -> Option<SystemReading> {
        let probe = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut reading = probe.with_system(|sys| {
                sys.refresh_cpu_usage();
                SystemReading {
                    cpu_percent: f64::from(sys.global_cpu_usage()),
                    cpus: sys.cpus().len(),
                    load_one: System::load_average().map(|l| l.one).unwrap_or(0.0),
                    ..SystemReading::default()
                }
            })?;
            if let Ok(disks) = Disks::new_with_refreshed_list() {
                let disk = disks
                    .iter()
                    .filter(|d| probe.workdir.starts_with(d.mount_point()))
                    .max_by_key(|d| d.mount_point().as_os_str().len());
                if let Some(disk) = disk {
                    reading.disk_mount = disk.mount_point().display().to_string();
                    reading.disk_total_bytes = disk.total_space();
                    reading.disk_available_bytes = disk.available_space();
                }
            }
            Some(reading)
        })
        .await
        .ok()
        .flatten()
    }
}
