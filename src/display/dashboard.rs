//! `%cluster dashboard`: the dashboard through the Jupyter server that serves the notebook
//! (when jupyter-server-proxy reaches it), else its URL on the cluster network and the ssh
//! tunnel that brings it to the user's own computer.

use askama::Template;
use dask_slurm::model::DashboardView;

use super::format::{safe_href, same_origin_href, text_columns, TextAlign};
use super::{html_bundle, Bundle};
use crate::jupyter_server::DashboardLink;

/// The JupyterLab command of dask-labextension that fills in a dashboard URL and opens its
/// default layout of panes.
pub const DASK_PANES_COMMAND: &str = "dask:populate-and-launch-layout";

/// The dashboard link (through the server, or the cluster URL with the copyable ssh line), as
/// HTML with a text twin.
///
/// ```
/// use dask_slurm::model::DashboardView;
/// use rust_cluster_kernel::display::dashboard::dashboard;
/// use rust_cluster_kernel::jupyter_server::{DashboardLink, Route};
///
/// let view = DashboardView {
///     url: "http://uc2n001:8787/status".into(),
///     local_url: "http://localhost:8787/status".into(),
///     ssh_command: "ssh -N -L 8787:uc2n001:8787 alice@uc2.example.org".into(),
/// };
/// let bundle = dashboard("demo", &view, None);
/// let html = bundle.data["text/html"].as_str().unwrap();
/// assert!(html.contains(r#"href="http://uc2n001:8787/status""#));
/// assert!(bundle.data["text/plain"].as_str().unwrap()
///     .contains("ssh -N -L 8787:uc2n001:8787 alice@uc2.example.org"));
///
/// let link = DashboardLink {
///     url: "/user/alice/proxy/uc2n001:8787/status".into(),
///     route: Route::Proxy,
///     lab_panes: false,
/// };
/// let bundle = dashboard("demo", &view, Some(&link));
/// let text = bundle.data["text/plain"].as_str().unwrap();
/// assert!(text.contains("/user/alice/proxy/uc2n001:8787/status") && !text.contains("ssh"));
/// ```
pub fn dashboard(cluster: &str, view: &DashboardView, link: Option<&DashboardLink>) -> Bundle {
    let served = link.map(ServedLink::new);
    let mut rows: Vec<[&str; 2]> = vec![["dashboard of", cluster]];
    if let Some(s) = &served {
        rows.push(["in JupyterLab", s.url]);
        rows.push(["", &s.how]);
        rows.push(["on the cluster", &view.url]);
    } else {
        rows.push(["on the cluster", &view.url]);
        rows.push(["from your computer", &view.ssh_command]);
        rows.push(["then open", &view.local_url]);
    }
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.map(str::to_owned).to_vec())
        .collect();
    let mut text = text_columns(&rows, &[TextAlign::Left], "");
    text.truncate(text.trim_end().len());
    let html = DashboardHtml {
        cluster,
        url: &view.url,
        href: safe_href(&view.url),
        local_url: &view.local_url,
        local_href: safe_href(&view.local_url),
        ssh: &view.ssh_command,
        served,
    };
    html_bundle("dashboard", html.render(), text)
}

/// A dashboard link through the Jupyter server, ready for the templates (`served_link.html`).
pub(crate) struct ServedLink<'a> {
    /// The URL, a path on the page's origin.
    pub(crate) url: &'a str,
    /// The URL if it may be an `href`.
    pub(crate) href: Option<&'a str>,
    /// How the server reaches the dashboard, in words.
    pub(crate) how: String,
    /// The command that opens dask-labextension's panes, when the server's JupyterLab has it.
    pub(crate) panes_command: Option<&'static str>,
    /// That command's arguments (JSON): the link.
    pub(crate) panes_args: String,
}

impl<'a> ServedLink<'a> {
    /// The display values of `link`.
    pub(crate) fn new(link: &'a DashboardLink) -> Self {
        ServedLink {
            url: &link.url,
            href: same_origin_href(&link.url),
            how: link.how(),
            panes_command: link.lab_panes.then_some(DASK_PANES_COMMAND),
            panes_args: serde_json::json!({ "url": link.url }).to_string(),
        }
    }
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardHtml<'a> {
    cluster: &'a str,
    url: &'a str,
    href: Option<&'a str>,
    local_url: &'a str,
    local_href: Option<&'a str>,
    ssh: &'a str,
    served: Option<ServedLink<'a>>,
}
