//! `%cluster attach`: adopt a cluster started elsewhere — a `tls://` scheduler with a client
//! certificate of its CA, a `tcp://` one only with `--insecure`.

use clap::{ArgGroup, Args};
use dask_slurm::manager::{AttachSource, AttachTls};
use dask_slurm::tls::ClientTls;

use super::{failed, Cluster};
use crate::display::Bundle;
use crate::magics::{MagicContext, MagicError};
use crate::paths::expand_path;

#[derive(Args)]
#[command(group(ArgGroup::new("source").required(true).args(["scheduler_file", "address"])))]
pub(super) struct AttachArgs {
    /// A name for the cluster here.
    name: Option<String>,
    /// The Dask scheduler file the cluster wrote.
    #[arg(long)]
    scheduler_file: Option<String>,
    /// The scheduler's address (tls://HOST:PORT or tcp://HOST:PORT); needs --dashboard-port.
    #[arg(long, requires = "dashboard_port")]
    address: Option<String>,
    /// The scheduler's dashboard (HTTP) port, with --address.
    #[arg(long)]
    dashboard_port: Option<u16>,
    /// For a tls:// scheduler: the CA certificate it trusts (PEM). Not needed for the scheduler
    /// file of a cluster started by this kernel elsewhere: its certificates are beside it.
    #[arg(long, requires_all = ["tls_cert", "tls_key"])]
    tls_ca: Option<String>,
    /// For a tls:// scheduler: the client certificate (PEM), signed by that CA.
    #[arg(long, requires_all = ["tls_ca", "tls_key"])]
    tls_cert: Option<String>,
    /// For a tls:// scheduler: the client's private key (PEM).
    #[arg(long, requires_all = ["tls_ca", "tls_cert"])]
    tls_key: Option<String>,
    /// Accept a plain tcp:// scheduler, which anyone who can reach it can use to run code as its
    /// owner.
    #[arg(long, conflicts_with_all = ["tls_ca", "tls_cert", "tls_key"])]
    insecure: bool,
}

impl AttachArgs {
    /// What to present to the scheduler.
    fn tls(&self) -> AttachTls {
        match (&self.tls_ca, &self.tls_cert, &self.tls_key) {
            (Some(ca), Some(cert), Some(key)) => AttachTls::Files(ClientTls {
                ca_file: expand_path(ca).into(),
                cert: expand_path(cert).into(),
                key: expand_path(key).into(),
            }),
            _ if self.insecure => AttachTls::Insecure,
            _ => AttachTls::Unspecified,
        }
    }
}

/// Adopts the cluster and shows its card.
pub(super) fn run(
    cluster: &Cluster,
    attach: AttachArgs,
    ctx: &mut MagicContext<'_>,
) -> Result<Option<Bundle>, MagicError> {
    let tls = attach.tls();
    let source = match (attach.scheduler_file, attach.address) {
        (Some(file), _) => AttachSource::SchedulerFile(expand_path(&file).into()),
        (None, Some(address)) => AttachSource::Address {
            address,
            dashboard_port: attach.dashboard_port.expect("clap requires it"),
        },
        (None, None) => unreachable!("clap requires a source"),
    };
    let view = cluster
        .clusters
        .attach(attach.name, source, tls)
        .map_err(failed)?;
    cluster.card(ctx.out, view)
}
