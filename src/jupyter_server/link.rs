//! Which link to a dashboard works through the Jupyter server: the pure part, which URL for
//! which answer of the server.
//!
//! jupyter-server-proxy serves `{base_url}proxy/{host}:{port}/…` for the hosts its allow-list
//! admits (`ServerProxy.host_allowlist`, by default `localhost` and `127.0.0.1`) and
//! `{base_url}proxy/{port}/…` for `localhost`. The kernel tries the direct route first; when
//! the server refuses it (or the host cannot be written in that route, as an IPv6 address), it
//! starts a [`Relay`](super::Relay) on `127.0.0.1` and tries the local route to the relay.

/// How the link reaches the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// jupyter-server-proxy connects to the dashboard's host and port itself.
    Proxy,
    /// jupyter-server-proxy connects to the kernel's relay on `127.0.0.1:port`, which forwards
    /// to the dashboard.
    Relay {
        /// The relay's port on `127.0.0.1`.
        port: u16,
    },
}

/// A link to a cluster's dashboard through the Jupyter server that serves the notebook.
///
/// ```
/// use rust_cluster_kernel::jupyter_server::{DashboardLink, Route};
///
/// let link = DashboardLink {
///     url: "/user/alice/proxy/40123/status".into(),
///     route: Route::Relay { port: 40123 },
///     lab_panes: true,
/// };
/// assert_eq!(link.how(), "through jupyter-server-proxy and the kernel's relay on 127.0.0.1:40123");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardLink {
    /// The status page's URL as a path on the server's own origin, e.g.
    /// `/user/alice/proxy/10.0.0.5:8787/status`: the browser reaches it through whatever
    /// proxy brought it to the notebook (JupyterHub, Open OnDemand).
    pub url: String,
    /// How the server reaches the dashboard.
    pub route: Route,
    /// Whether the server's JupyterLab has dask-labextension, whose panes can show it.
    pub lab_panes: bool,
}

impl DashboardLink {
    /// The route in words, for the card and `%cluster dashboard`.
    pub fn how(&self) -> String {
        match self.route {
            Route::Proxy => "through jupyter-server-proxy".to_owned(),
            Route::Relay { port } => {
                format!("through jupyter-server-proxy and the kernel's relay on 127.0.0.1:{port}")
            }
        }
    }
}

/// The direct route's path below the base URL, ending in `/`, or `None` for a host that the
/// route cannot carry (jupyter-server-proxy's pattern is `proxy/([^/:@]+):(\d+)`).
pub fn direct_root(host: &str, port: u16) -> Option<String> {
    let writable = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_');
    writable.then(|| format!("proxy/{host}:{port}/"))
}

/// The local route's path below the base URL to a port on the server's machine.
pub fn local_root(port: u16) -> String {
    format!("proxy/{port}/")
}

/// The first route that reaches Dask: the direct one, else through a relay that `start_relay`
/// starts (and that the answer keeps alive). `reaches` probes a root below the server's URL.
/// `None` when neither does (the relay is then dropped).
pub fn choose<R>(
    host: &str,
    port: u16,
    reaches: impl Fn(&str) -> bool,
    start_relay: impl FnOnce() -> Option<(R, u16)>,
) -> Option<(String, Route, Option<R>)> {
    if let Some(root) = direct_root(host, port).filter(|root| reaches(root)) {
        return Some((root, Route::Proxy, None));
    }
    let (relay, relay_port) = start_relay()?;
    let root = local_root(relay_port);
    reaches(&root).then(|| (root, Route::Relay { port: relay_port }, Some(relay)))
}

/// A link for Dask's `distributed.dashboard.link`, which Dask formats with `str.format`
/// (`{host}`, `{port}`, environment variables): braces of the URL itself are doubled.
///
/// ```
/// use rust_cluster_kernel::jupyter_server::link::dask_link_template;
///
/// assert_eq!(dask_link_template("/user/{x}/proxy/8787/status"), "/user/{{x}}/proxy/8787/status");
/// ```
pub fn dask_link_template(url: &str) -> String {
    url.replace('{', "{{").replace('}', "}}")
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[test]
    fn an_admitted_host_gets_the_direct_route_and_no_relay() {
        let started = Cell::new(false);
        let chosen = choose(
            "10.0.0.5",
            8787,
            |root| root == "proxy/10.0.0.5:8787/",
            || {
                started.set(true);
                Some(((), 40000))
            },
        );
        assert_eq!(
            chosen,
            Some(("proxy/10.0.0.5:8787/".to_owned(), Route::Proxy, None))
        );
        assert!(!started.get(), "no relay for a direct route");
    }

    #[test]
    fn a_refused_host_goes_through_the_relay() {
        // The default allow-list: localhost only, so only the relay's route answers.
        let chosen = choose(
            "uc2n001",
            8787,
            |root| root == "proxy/40000/",
            || Some(("relay", 40000)),
        );
        assert_eq!(
            chosen,
            Some((
                "proxy/40000/".to_owned(),
                Route::Relay { port: 40000 },
                Some("relay")
            ))
        );
    }

    #[test]
    fn without_a_proxy_there_is_no_link() {
        // No jupyter-server-proxy: every probe gets a 404.
        assert_eq!(
            choose("uc2n001", 8787, |_| false, || Some(((), 40000))),
            None
        );
        // A relay that could not start.
        assert_eq!(choose::<()>("uc2n001", 8787, |_| false, || None), None);
    }

    #[test]
    fn hosts_the_direct_route_cannot_carry_go_to_the_relay() {
        assert_eq!(direct_root("fe80::1", 8787), None);
        assert_eq!(direct_root("a/b", 8787), None);
        assert_eq!(direct_root("", 8787), None);
        assert_eq!(
            direct_root("uc2n001.cluster", 1).as_deref(),
            Some("proxy/uc2n001.cluster:1/")
        );
        let chosen = choose("fe80::1", 8787, |_| true, || Some(((), 40000)));
        assert_eq!(chosen.map(|c| c.1), Some(Route::Relay { port: 40000 }));
    }
}
