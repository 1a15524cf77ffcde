//! `[egress]`: how the server resolves the hosts of calls to addresses users choose (`http`
//! steps, push endpoints; `crate::egress`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressSettings {
    /// Lines as in /etc/hosts (`"10.0.0.5 api.internal"`): these names take these addresses,
    /// without asking the system's resolver. The private-address rule applies to them as to any
    /// answer, so a line cannot open the server's network to a routine.
    #[serde(default)]
    pub hosts: Vec<String>,
}

impl EgressSettings {
    /// `hosts` read: each name (lower case, without a trailing dot) with its addresses.
    pub fn table(&self) -> Result<BTreeMap<String, Vec<IpAddr>>, String> {
        let mut table: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
        for line in &self.hosts {
            let mut words = line.split_whitespace();
            let ip: IpAddr = words
                .next()
                .and_then(|w| w.parse().ok())
                .ok_or_else(|| format!("egress.hosts: {line:?} does not start with an address"))?;
            let mut names = words.peekable();
            if names.peek().is_none() {
                return Err(format!("egress.hosts: {line:?} names no host"));
            }
            for name in names {
                let key = name.trim_end_matches('.').to_ascii_lowercase();
                table.entry(key).or_default().push(ip);
            }
        }
        Ok(table)
    }
}
