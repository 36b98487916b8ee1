//! The dashboards of a kernel's clusters through its Jupyter server: one link per cluster,
//! probed once and remembered, with the relay it needs kept alive until the cluster ends.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Mutex, MutexGuard, OnceLock};

use dask_slurm::model::{ClusterState, ClusterView};

use super::link::{choose, DashboardLink};
use super::relay::Relay;
use super::server::JupyterServer;

/// The JupyterLab extension whose panes show a Dask dashboard.
const DASK_LAB_EXTENSION: &str = "dask-labextension";

/// The dashboard links of one kernel.
///
/// ```
/// use rust_cluster_kernel::jupyter_server::Dashboards;
///
/// // A kernel without a Jupyter server (started by jupyter_client alone): no links.
/// let dashboards = Dashboards::new(None);
/// assert_eq!(dashboards.link("demo", "10.0.0.5", 8787, false), None);
/// ```
pub struct Dashboards {
    server: Option<JupyterServer>,
    /// Whether the server's JupyterLab loads dask-labextension: asked once, when the first link
    /// is made.
    lab_panes: OnceLock<bool>,
    /// By cluster name. Held while probing, so that two callers never start two relays.
    clusters: Mutex<HashMap<String, Entry>>,
}

/// What is known of one cluster's dashboard.
struct Entry {
    /// The dashboard's host and port that the link was made for.
    target: (String, u16),
    /// The link, or `None` when the last probe found no route.
    link: Option<DashboardLink>,
    /// The relay the link goes through; dropping the entry ends it.
    _relay: Option<Relay>,
}

impl Dashboards {
    /// The dashboards of a kernel that belongs to `server` (`None`: no links, only ssh).
    pub fn new(server: Option<JupyterServer>) -> Self {
        Dashboards {
            server,
            lab_panes: OnceLock::new(),
            clusters: Mutex::new(HashMap::new()),
        }
    }

    /// The link to `cluster`'s dashboard at `host:port` through the server, if one works.
    /// The answer is remembered for that address; `fresh` probes again when the last probe
    /// found none (`%cluster dashboard` does, the card does not on every poll).
    pub fn link(&self, cluster: &str, host: &str, port: u16, fresh: bool) -> Option<DashboardLink> {
        let server = self.server.as_ref()?;
        let mut clusters = self.lock();
        let target = (host.to_owned(), port);
        if let Some(entry) = clusters.get(cluster).filter(|e| e.target == target) {
            if entry.link.is_some() || !fresh {
                return entry.link.clone();
            }
        }
        // A new address (or a fresh look): whatever relay served the old one ends here.
        clusters.remove(cluster);
        let chosen = choose(
            host,
            port,
            |root| server.reaches_dask(root),
            || {
                let address = resolve(host, port)?;
                let relay = Relay::start(address)
                    .map_err(|e| tracing::warn!("dashboard relay to {address}: {e}"))
                    .ok()?;
                let relay_port = relay.port();
                Some((relay, relay_port))
            },
        );
        let (link, relay) = match chosen {
            Some((root, route, relay)) => {
                let lab_panes = *self
                    .lab_panes
                    .get_or_init(|| server.lab_loads(DASK_LAB_EXTENSION));
                let link = DashboardLink {
                    url: format!("{}{root}status", server.base_url),
                    route,
                    lab_panes,
                };
                (Some(link), relay)
            }
            None => (None, None),
        };
        clusters.insert(
            cluster.to_owned(),
            Entry {
                target,
                link: link.clone(),
                _relay: relay,
            },
        );
        link
    }

    /// The link for a cluster as the card shows it: none before its scheduler runs, and once
    /// it has ended the link is forgotten and its relay ends.
    pub fn for_view(&self, view: &ClusterView, fresh: bool) -> Option<DashboardLink> {
        if matches!(view.state, ClusterState::Finished | ClusterState::Failed) {
            self.forget(&view.name);
            return None;
        }
        let scheduler = view.scheduler.as_ref()?;
        self.link(&view.name, &scheduler.host, scheduler.dashboard_port, fresh)
    }

    /// Forgets `cluster`'s link and ends its relay.
    pub fn forget(&self, cluster: &str) {
        self.lock().remove(cluster);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.clusters.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The dashboard's address, fixed once: the relay forwards there and nowhere else.
fn resolve(host: &str, port: u16) -> Option<SocketAddr> {
    (host, port).to_socket_addrs().ok()?.next()
}
