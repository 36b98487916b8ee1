//! Which Jupyter server the kernel belongs to, and asking it things over HTTP.
//!
//! jupyter_server writes `jpserver-<pid>.json` into its runtime directory, the directory where
//! it also writes its kernels' connection files; the kernel reads the one of the server that
//! launched it (`JPY_PARENT_PID`, else its parent process). Without such a file, a JupyterHub
//! single-user server is known from its environment (`JUPYTERHUB_SERVICE_PREFIX`,
//! `JUPYTERHUB_SERVICE_URL`, `JUPYTERHUB_API_TOKEN`), which its kernels inherit.

use std::path::Path;
use std::time::Duration;

use rustix::process::getppid;
use serde::Deserialize;

/// How long one request to the server may take: the probes run on the poller's thread.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The most of a response the kernel reads (the JupyterLab page is a few KiB).
const BODY_LIMIT: u64 = 4 * 1024 * 1024;

/// The Jupyter server that serves the notebook, as this kernel reaches it.
///
/// ```
/// use rust_cluster_kernel::jupyter_server::JupyterServer;
///
/// let server = JupyterServer::from_server_info(r#"{"base_url": "/user/alice/",
///     "url": "http://localhost:8888/user/alice/", "token": "abc", "pid": 7}"#).unwrap();
/// assert_eq!(server.base_url, "/user/alice/");
/// assert_eq!(server.url, "http://localhost:8888/user/alice/");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JupyterServer {
    /// The path under which the browser reaches the server, e.g. `/user/alice/`: links are
    /// made of it alone (no host), so that they work behind JupyterHub's or Open OnDemand's
    /// proxy, whose host the kernel cannot know.
    pub base_url: String,
    /// Where the kernel itself reaches the server, base URL included, e.g.
    /// `http://localhost:8888/user/alice/`: the probes go there.
    pub url: String,
    /// The server's token, sent as `Authorization: token …` with every probe.
    token: Option<String>,
}

/// The fields of `jpserver-<pid>.json` the kernel uses.
#[derive(Deserialize)]
struct ServerInfo {
    base_url: String,
    url: String,
    #[serde(default)]
    token: Option<String>,
}

impl JupyterServer {
    /// The server that launched the kernel whose connection file is `connection_file`, if it
    /// can be found (see the module's documentation).
    pub fn find(connection_file: &Path) -> Option<JupyterServer> {
        let runtime_dir = connection_file.parent()?;
        let parent_pids = [
            std::env::var("JPY_PARENT_PID").ok(),
            getppid().map(|pid| pid.as_raw_nonzero().to_string()),
        ];
        parent_pids
            .iter()
            .flatten()
            .filter_map(|pid| {
                let file = runtime_dir.join(format!("jpserver-{}.json", pid.trim()));
                std::fs::read_to_string(file).ok()
            })
            .find_map(|text| JupyterServer::from_server_info(&text))
            .or_else(|| JupyterServer::from_hub_env(|name| std::env::var(name).ok()))
    }

    /// The server described by the text of a `jpserver-<pid>.json`; `None` when it is not
    /// such a file or the server does not speak plain HTTP (a Unix socket or HTTPS: the kernel
    /// has no TLS client, so it could not probe).
    pub fn from_server_info(text: &str) -> Option<JupyterServer> {
        let info: ServerInfo = serde_json::from_str(text).ok()?;
        JupyterServer::new(info.base_url, info.url, info.token)
    }

    /// A JupyterHub single-user server, from the variables that it gives its kernels
    /// (`get` reads one).
    fn from_hub_env(get: impl Fn(&str) -> Option<String>) -> Option<JupyterServer> {
        JupyterServer::new(
            get("JUPYTERHUB_SERVICE_PREFIX")?,
            get("JUPYTERHUB_SERVICE_URL")?,
            get("JUPYTERHUB_API_TOKEN"),
        )
    }

    fn new(base_url: String, url: String, token: Option<String>) -> Option<JupyterServer> {
        if !url.starts_with("http://") || !base_url.starts_with('/') {
            return None;
        }
        let slash = |s: String| if s.ends_with('/') { s } else { s + "/" };
        Some(JupyterServer {
            base_url: slash(base_url),
            url: slash(url),
            token: token.filter(|t| !t.is_empty()),
        })
    }

    /// `GET {url}{path}` with the server's token, redirects not followed: the status and the
    /// body, or `None` when the server did not answer.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(REQUEST_TIMEOUT))
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        let mut request = agent.get(format!("{}{path}", self.url));
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("token {token}"));
        }
        let mut response = request.call().ok()?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT)
            .read_to_string()
            .unwrap_or_default();
        Some((status, body))
    }

    /// Whether Dask's HTTP server answers at `{url}{root}`, a path that ends with `/` (e.g.
    /// `proxy/8787/`): its `health` page says `ok`. A refusal of the proxy (403 for a host
    /// that its allow-list does not admit, 404 without jupyter-server-proxy) or a login page
    /// says something else.
    pub fn reaches_dask(&self, root: &str) -> bool {
        matches!(self.get(&format!("{root}health")), Some((200, body)) if body.trim() == "ok")
    }

    /// Whether the server's JupyterLab loads the prebuilt extension `name` (e.g.
    /// `dask-labextension`): the page `lab` lists the extensions it loads in its
    /// `jupyter-config-data`.
    pub fn lab_loads(&self, name: &str) -> bool {
        match self.get("lab") {
            Some((200, page)) => lab_page_loads(&page, name),
            _ => false,
        }
    }
}

/// Whether the JupyterLab page `page` lists `name` among its `federated_extensions`.
fn lab_page_loads(page: &str, name: &str) -> bool {
    let Some(start) = page
        .find(r#"id="jupyter-config-data""#)
        .and_then(|at| page[at..].find('>').map(|end| at + end + 1))
    else {
        return false;
    };
    let Some(len) = page[start..].find("</script>") else {
        return false;
    };
    let Ok(config) = serde_json::from_str::<serde_json::Value>(&page[start..start + len]) else {
        return false;
    };
    config["federated_extensions"]
        .as_array()
        .is_some_and(|list| list.iter().any(|e| e["name"] == name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_file_gives_the_base_url_and_where_to_probe() {
        let info = r#"{"base_url": "/", "hostname": "localhost", "password": false,
            "pid": 21550, "port": 33087, "root_dir": "/tmp", "secure": false, "sock": "",
            "token": "", "url": "http://localhost:33087/", "version": "2.21.1"}"#;
        let server = JupyterServer::from_server_info(info).unwrap();
        assert_eq!(server.base_url, "/");
        assert_eq!(server.url, "http://localhost:33087/");
        assert_eq!(server.token, None, "an empty token is no token");
    }

    #[test]
    fn servers_the_kernel_cannot_probe_are_not_used() {
        let https = r#"{"base_url": "/", "url": "https://localhost:8888/", "token": "t"}"#;
        assert_eq!(JupyterServer::from_server_info(https), None);
        assert_eq!(JupyterServer::from_server_info("not json"), None);
    }

    #[test]
    fn a_hub_server_is_known_from_its_environment() {
        let env = |name: &str| match name {
            "JUPYTERHUB_SERVICE_PREFIX" => Some("/user/alice".to_owned()),
            "JUPYTERHUB_SERVICE_URL" => Some("http://127.0.0.1:40031/user/alice/".to_owned()),
            "JUPYTERHUB_API_TOKEN" => Some("secret".to_owned()),
            _ => None,
        };
        let server = JupyterServer::from_hub_env(env).unwrap();
        assert_eq!(server.base_url, "/user/alice/");
        assert_eq!(server.token.as_deref(), Some("secret"));
        assert_eq!(JupyterServer::from_hub_env(|_| None), None);
    }

    #[test]
    fn the_lab_page_lists_the_extensions_it_loads() {
        let page = r#"<html><script id="jupyter-config-data" type="application/json">{"baseUrl": "/",
            "federated_extensions": [{"name": "jupyterlab_pygments"}, {"name": "dask-labextension",
            "load": "static/remoteEntry.js"}]}</script></html>"#;
        assert!(lab_page_loads(page, "dask-labextension"));
        assert!(!lab_page_loads(page, "other"));
        assert!(!lab_page_loads(
            "<html>dask-labextension</html>",
            "dask-labextension"
        ));
    }
}
