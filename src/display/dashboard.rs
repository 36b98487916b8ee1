//! `%cluster dashboard`: the dashboard's URL on the cluster network, and the ssh tunnel that
//! brings it to the user's own computer.

use askama::Template;
use dask_slurm::model::DashboardView;

use super::format::{safe_href, text_columns, TextAlign};
use super::{html_bundle, Bundle};

/// The dashboard link and the copyable ssh line, as HTML with a text twin.
///
/// ```
/// use dask_slurm::model::DashboardView;
/// use rust_cluster_kernel::display::dashboard::dashboard;
///
/// let bundle = dashboard("demo", &DashboardView {
///     url: "http://uc2n001:8787/status".into(),
///     local_url: "http://localhost:8787/status".into(),
///     ssh_command: "ssh -N -L 8787:uc2n001:8787 alice@uc2.example.org".into(),
/// });
/// let html = bundle.data["text/html"].as_str().unwrap();
/// assert!(html.contains(r#"href="http://uc2n001:8787/status""#));
/// assert!(bundle.data["text/plain"].as_str().unwrap()
///     .contains("ssh -N -L 8787:uc2n001:8787 alice@uc2.example.org"));
/// ```
pub fn dashboard(cluster: &str, view: &DashboardView) -> Bundle {
    let rows = [
        ["dashboard of", cluster],
        ["on the cluster", &view.url],
        ["from your computer", &view.ssh_command],
        ["then open", &view.local_url],
    ]
    .map(|row| row.map(str::to_owned).to_vec());
    let mut text = text_columns(&rows, &[TextAlign::Left], "");
    text.truncate(text.trim_end().len());
    let html = DashboardHtml {
        cluster,
        url: &view.url,
        href: safe_href(&view.url),
        local_url: &view.local_url,
        local_href: safe_href(&view.local_url),
        ssh: &view.ssh_command,
    };
    html_bundle("dashboard", html.render(), text)
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
}
