//! Calls to addresses a user chose (an `http` step's URL, a push subscription's endpoint): the
//! host resolved once, every address checked, and the connection made to the addresses that
//! were checked.
//!
//! ```text
//! URL ─▶ Egress::check_literal: an IP literal (v4, or v6 in brackets) private? ─▶ Refused
//!     ─▶ a client from Egress::client: reqwest asks Egress (its resolver) for the name's
//!        addresses ─▶ egress.hosts, else the system's resolver ─▶ any of them private?
//!        ─▶ Refused (the request fails; `refused` finds why in its error)
//!        ─▶ else exactly those addresses go to the connector
//! ```
//!
//! Why the resolver and not a look-up before the call: a name looked up to be checked and then
//! looked up again by the client can answer a public address the first time and a private one
//! the second (DNS rebinding, ADR 20). Here there is one look-up and the connector dials what it
//! answered. IP literals never reach a resolver, so they are checked before the call; a redirect
//! could name one, so these clients follow none, and a proxy would resolve the name itself, so
//! they use none.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::domain::address::is_private;

/// Why a call was not made.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Refused {
    #[error("the URL has no host")]
    NoHost,
    #[error("{0} is a private address")]
    PrivateLiteral(IpAddr),
    #[error("{host} resolves to a private address ({ip})")]
    PrivateName { host: String, ip: IpAddr },
    #[error("cannot resolve {host}: {why}")]
    Unresolved { host: String, why: String },
}

impl Refused {
    /// A private address (as opposed to a name that did not resolve, which may next time).
    pub fn is_private(&self) -> bool {
        matches!(
            self,
            Refused::PrivateLiteral(_) | Refused::PrivateName { .. }
        )
    }
}

/// The checks of one kind of call: which names are pinned (`egress.hosts`) and whether private
/// addresses are allowed (`runs.allow_private_addresses`, `push.allow_insecure_endpoints`).
#[derive(Debug, Clone)]
pub struct Egress {
    hosts: Arc<BTreeMap<String, Vec<IpAddr>>>,
    allow_private: bool,
}

impl Egress {
    /// `hosts`: names (lower case, no trailing dot) answered without asking the system.
    pub fn new(hosts: BTreeMap<String, Vec<IpAddr>>, allow_private: bool) -> Self {
        Self {
            hosts: Arc::new(hosts),
            allow_private,
        }
    }

    /// From `[egress]`, for calls that may (or may not) reach private addresses.
    pub fn from_settings(
        settings: &crate::config::EgressSettings,
        allow_private: bool,
    ) -> Result<Self, String> {
        Ok(Self::new(settings.table()?, allow_private))
    }

    /// A client builder whose connections go only to checked addresses (set timeouts on it).
    pub fn client(&self) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .dns_resolver(Arc::new(self.clone()))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
    }

    /// The IP literal of `url` checked; a name is checked when the client resolves it.
    pub fn check_literal(&self, url: &reqwest::Url) -> Result<(), Refused> {
        let host = url.host_str().ok_or(Refused::NoHost)?;
        // `Url` keeps an IPv6 literal in its brackets; parsed, the same rule applies to it.
        let literal = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
            .parse::<IpAddr>();
        match literal {
            Ok(ip) if !self.allow_private && is_private(ip) => Err(Refused::PrivateLiteral(ip)),
            _ => Ok(()),
        }
    }

    /// `url`'s host checked now, its name resolved: for a URL kept to be called later (a push
    /// endpoint), so a private one is refused when it is given. The call checks it again.
    pub async fn check(&self, url: &reqwest::Url) -> Result<(), Refused> {
        self.check_literal(url)?;
        // `domain()` is `None` for an IP literal, checked above.
        match url.domain() {
            Some(name) => self.lookup(name).await.map(drop),
            None => Ok(()),
        }
    }

    /// Every address of `name`, each allowed; none private unless private ones are allowed.
    pub async fn lookup(&self, name: &str) -> Result<Vec<IpAddr>, Refused> {
        let key = name.trim_end_matches('.').to_ascii_lowercase();
        let unresolved = |why: String| Refused::Unresolved {
            host: name.to_owned(),
            why,
        };
        let ips: Vec<IpAddr> = match self.hosts.get(&key) {
            Some(ips) => ips.clone(),
            None => tokio::net::lookup_host((name, 0))
                .await
                .map_err(|e| unresolved(e.to_string()))?
                .map(|a| a.ip())
                .collect(),
        };
        if ips.is_empty() {
            return Err(unresolved("no address".into()));
        }
        if !self.allow_private
            && let Some(ip) = ips.iter().copied().find(|ip| is_private(*ip))
        {
            return Err(Refused::PrivateName {
                host: name.to_owned(),
                ip,
            });
        }
        Ok(ips)
    }
}

impl reqwest::dns::Resolve for Egress {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let egress = self.clone();
        let name = name.as_str().to_owned();
        Box::pin(async move {
            let ips = egress.lookup(&name).await?;
            // Port 0: reqwest puts the URL's port (or the scheme's) in its place.
            let addrs: reqwest::dns::Addrs =
                Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// Why a request of a client from [`Egress::client`] was refused, if it was.
pub fn refused(error: &reqwest::Error) -> Option<&Refused> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<Refused>() {
            return Some(refused);
        }
        source = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts_table(lines: &[String]) -> Result<BTreeMap<String, Vec<IpAddr>>, String> {
        crate::config::EgressSettings {
            hosts: lines.to_vec(),
        }
        .table()
    }

    fn url(s: &str) -> reqwest::Url {
        reqwest::Url::parse(s).unwrap()
    }

    #[test]
    fn ip_literals_are_parsed_then_judged_by_the_private_address_rule() {
        let egress = Egress::new(BTreeMap::new(), false);
        for private in [
            "http://[::1]:8080/",
            "http://[fd00::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://127.0.0.1/",
            "http://0x7f.1/",
            "http://10.0.0.1/",
        ] {
            assert!(
                matches!(
                    egress.check_literal(&url(private)),
                    Err(Refused::PrivateLiteral(_))
                ),
                "{private}"
            );
        }
        for public in [
            "https://[2001:4860:4860::8888]/",
            "http://8.8.8.8/",
            "https://push.example/",
        ] {
            assert!(egress.check_literal(&url(public)).is_ok(), "{public}");
        }
        let open = Egress::new(BTreeMap::new(), true);
        assert!(open.check_literal(&url("http://[::1]/")).is_ok());
    }

    #[tokio::test]
    async fn names_are_refused_when_any_address_is_private() {
        let hosts = hosts_table(&[
            "127.0.0.1 inside.test".into(),
            "8.8.8.8 mixed.test Outside.Test.".into(),
            "10.0.0.1 mixed.test".into(),
        ])
        .unwrap();
        let egress = Egress::new(hosts, false);
        assert!(matches!(
            egress.lookup("inside.test").await,
            Err(Refused::PrivateName { .. })
        ));
        assert!(matches!(
            egress.lookup("mixed.test").await,
            Err(Refused::PrivateName { .. })
        ));
        assert_eq!(
            egress.lookup("outside.test").await.unwrap(),
            vec!["8.8.8.8".parse::<IpAddr>().unwrap()]
        );
        assert!(hosts_table(&["inside.test".into()]).is_err());
        assert!(hosts_table(&["127.0.0.1".into()]).is_err());
    }

    /// The connector dials what the resolver answered and nothing else: the name is known only
    /// to the table, so a call that reaches the listener went to the table's address, and one
    /// refused never reaches it.
    #[tokio::test]
    async fn the_connection_goes_to_the_addresses_checked() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hosts = hosts_table(&["127.0.0.1 inside.test".into()]).unwrap();
        let target = format!("http://inside.test:{port}/");

        // A timeout, so a client that did dial fails here rather than waiting for an answer.
        let guarded = Egress::new(hosts.clone(), false)
            .client()
            .timeout(std::time::Duration::from_secs(2))
            .build()
            .unwrap();
        let error = guarded.get(&target).send().await.unwrap_err();
        assert!(
            matches!(refused(&error), Some(Refused::PrivateName { .. })),
            "{error:?}"
        );
        let nothing =
            tokio::time::timeout(std::time::Duration::from_millis(200), listener.accept()).await;
        assert!(nothing.is_err(), "nothing was dialled");

        let open = Egress::new(hosts, true).client().build().unwrap();
        let call = tokio::spawn(async move { open.get(&target).send().await });
        let accepted =
            tokio::time::timeout(std::time::Duration::from_secs(5), listener.accept()).await;
        assert!(
            accepted.is_ok_and(|a| a.is_ok()),
            "the table's address was dialled"
        );
        call.abort();
    }
}
