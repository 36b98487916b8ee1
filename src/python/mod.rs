//! The Python bridge behind `%%python`: a Python kernel (ipykernel) that this kernel starts on
//! first use and drives as a Jupyter *client*, with the protocol code of [`crate::protocol`].
//!
//! - The interpreter is the cluster's: `%python_env --python`, else `RUST_CLUSTER_KERNEL_PYTHON`,
//!   else `bin/python` of the `python_env` of the cluster that `%%python` is bound to (so that
//!   the client's Dask is the cluster's), else that of the default profile, else `python3` on
//!   PATH. When the cluster to bind to runs another Python than the sub-kernel, the next cell
//!   starts a fresh sub-kernel on the cluster's, and says so.
//! - The sub-kernel's stream, display_data, update_display_data and clear_output messages are
//!   forwarded under the running cell; its execute_result becomes the cell's result and its
//!   error the cell's error, so rich reprs (Dask's Client and arrays, images) render as in a
//!   Python kernel.
//! - Widgets live in Python: the sub-kernel's comm messages reach the page (in order with its
//!   outputs, also after the cell has ended) and the page's reach the sub-kernel.
//! - Bound to a cluster: before each cell the sub-kernel is told the scheduler address of the
//!   cluster chosen with `%cluster use` (else the newest one) as `DASK_SCHEDULER_ADDRESS` and in
//!   Dask's config, so that `Client()` needs no arguments. For a mutual-TLS cluster (`tls://`)
//!   it is also told the cluster's CA and client certificate and key (paths) and that encryption
//!   is required, as `DASK_DISTRIBUTED__COMM__…` variables and in Dask's config; binding to a
//!   plain `tcp://` cluster removes them again.
//! - Dask's own HTML (the `Client`'s and the cluster's reprs) links the dashboard the way the
//!   card does: through the Jupyter server when [`Dashboards`] found a route, as
//!   `distributed.dashboard.link` (and `DASK_DISTRIBUTED__DASHBOARD__LINK`); else Dask's default.
//! - `input()` and `getpass()` in Python reach the frontend: the cell's `allow_stdin` is passed
//!   on, and the sub-kernel's input_request goes to the frontend (under the running cell) and
//!   the answer back to it.
//! - Interrupt sends SIGINT to the sub-kernel; a sub-kernel that died is replaced by a fresh one
//!   at the next cell, which says so.

mod subkernel;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use dask_slurm::manager::Clusters;
use dask_slurm::model::{ClusterState, ClusterView};
use dask_slurm::tls::{self, ClientTls};
use serde_json::{Map, Value};

use crate::cell::{CellInput, ErrorReport, Interrupt, Output};
use crate::display::Bundle;
use crate::jupyter_server::link::dask_link_template;
use crate::jupyter_server::Dashboards;
use crate::paths::expand_path;
use crate::protocol::WireMessage;
use subkernel::{Stopped, SubKernel};

/// The environment variable that names the Python interpreter of `%%python`.
pub const PYTHON_VARIABLE: &str = "RUST_CLUSTER_KERNEL_PYTHON";

/// The Python sub-kernel of one kernel, started on first use.
pub struct PythonBridge {
    clusters: Arc<Clusters>,
    /// The dashboard links through the Jupyter server, told to Dask.
    dashboards: Arc<Dashboards>,
    state: Mutex<BridgeState>,
    /// Where the sub-kernel's comm messages (widgets) are published: the outputs of the last
    /// request passed to it, a cell or a comm message of the frontend.
    comm_output: Arc<Mutex<Option<Output>>>,
}

#[derive(Default)]
struct BridgeState {
    /// Set by `%python_env --python`.
    chosen_python: Option<PathBuf>,
    /// Set by `%cluster use`.
    chosen_cluster: Option<String>,
    kernel: Option<SubKernel>,
    /// How the last sub-kernel ended, when it did not end on request; the next cell says so.
    ended: Option<String>,
}

/// Which interpreter the bridge uses, and where that choice comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonChoice {
    /// The interpreter.
    pub python: PathBuf,
    /// Why this one, in the user's terms.
    pub source: String,
}

/// What `%python_env` shows.
#[derive(Debug, Clone)]
pub struct BridgeStatus {
    /// The interpreter the next start would use.
    pub choice: PythonChoice,
    /// The running sub-kernel: its pid and interpreter.
    pub running: Option<(u32, PathBuf)>,
    /// The cluster the sub-kernel is bound to, and its scheduler address.
    pub bound_to: Option<(String, String)>,
}

impl PythonBridge {
    /// A bridge that binds its sub-kernel to the clusters of `clusters`, with their dashboard
    /// links from `dashboards`.
    pub fn new(clusters: Arc<Clusters>, dashboards: Arc<Dashboards>) -> Self {
        PythonBridge {
            clusters,
            dashboards,
            state: Mutex::new(BridgeState::default()),
            comm_output: Arc::default(),
        }
    }

    /// The interpreter the next sub-kernel would run on.
    pub fn choice(&self) -> PythonChoice {
        let chosen = self.lock().chosen_python.clone();
        self.choose(chosen, self.live_cluster().as_ref())
    }

    /// The interpreter, given the one `%python_env --python` chose and the cluster to bind to
    /// (it reads the profiles when neither decides).
    fn choose(&self, chosen: Option<PathBuf>, cluster: Option<&ClusterView>) -> PythonChoice {
        if let Some(python) = chosen {
            return PythonChoice {
                python,
                source: "%python_env --python".into(),
            };
        }
        if let Some(python) = python_variable() {
            return PythonChoice {
                python: python.into(),
                source: format!("${PYTHON_VARIABLE}"),
            };
        }
        if let Some(choice) = cluster.and_then(cluster_python) {
            return choice;
        }
        if let Ok(Some(env)) = self.clusters.python_env(None) {
            let python = PathBuf::from(expand_path(&env)).join("bin/python");
            if python.exists() {
                return PythonChoice {
                    python,
                    source: format!("python_env of the default profile ({env})"),
                };
            }
        }
        PythonChoice {
            python: "python3".into(),
            source: "python3 on PATH".into(),
        }
    }

    /// Uses `python` from now on; a running sub-kernel on another interpreter is stopped.
    pub fn set_python(&self, python: PathBuf) {
        let mut state = self.lock();
        if state.kernel.as_ref().is_some_and(|k| k.python != python) {
            state.kernel = None;
        }
        state.chosen_python = Some(python);
    }

    /// Binds `%%python` to the cluster `name`; returns its scheduler address, if it has one yet.
    pub fn use_cluster(&self, name: &str) -> Result<Option<String>, String> {
        let view = self
            .clusters
            .status(Some(name))
            .map_err(|e| e.to_string())?;
        self.lock().chosen_cluster = Some(name.to_owned());
        Ok(view.scheduler.map(|s| s.address))
    }

    /// Stops the sub-kernel (if any); the next `%%python` starts a fresh one.
    pub fn restart(&self) -> bool {
        self.lock().kernel.take().is_some()
    }

    /// The interpreter, the running sub-kernel and its cluster.
    pub fn status(&self) -> BridgeStatus {
        let choice = self.choice();
        let state = self.lock();
        BridgeStatus {
            choice,
            running: state.kernel.as_ref().map(|k| (k.pid(), k.python.clone())),
            bound_to: state.kernel.as_ref().and_then(|k| k.bound_to.clone()),
        }
    }

    /// Runs Python `code` in the sub-kernel (started if need be), forwarding its outputs to
    /// `out`. The value of a last expression comes back as the cell's result.
    pub fn execute(
        &self,
        code: &str,
        out: &Output,
        interrupt: &Interrupt,
        input: &CellInput,
    ) -> Result<Option<Bundle>, ErrorReport> {
        let cluster = self.live_cluster();
        let mut state = self.lock();
        if let Some(status) = state.kernel.as_mut().and_then(|k| k.exited()) {
            state.kernel = None;
            state.ended = Some(status.to_string());
        }
        // A cluster with a Python of its own gets a client on that Python, unless the user chose one.
        let explicit = state.chosen_python.is_some() || python_variable().is_some();
        if let (false, Some(running), Some(wanted)) = (
            explicit,
            state.kernel.as_ref(),
            cluster.as_ref().and_then(cluster_python),
        ) {
            if running.python != wanted.python {
                out.stderr(&format!(
                    "%%python now runs on {} ({}): a fresh Python kernel starts there, and the \
                     variables of the previous one are gone.\n",
                    wanted.python.display(),
                    wanted.source
                ));
                state.kernel = None;
            }
        }
        if state.kernel.is_none() {
            if let Some(how) = state.ended.take() {
                out.stderr(&format!(
                    "The Python kernel had stopped ({how}); starting a fresh one: its variables are gone.\n"
                ));
            }
            // Chosen only when one starts: a running kernel keeps its interpreter, and the
            // profiles are not read again for every cell.
            let choice = self.choose(state.chosen_python.clone(), cluster.as_ref());
            let kernel = SubKernel::start(&choice.python, self.comm_sink())
                .map_err(|e| ErrorReport::new("PythonKernelError", e))?;
            state.kernel = Some(kernel);
        }
        let kernel = state.kernel.as_mut().expect("started above");
        *lock_output(&self.comm_output) = Some(out.clone());
        let link = cluster
            .as_ref()
            .and_then(|c| self.dashboards.for_view(c, false))
            .map(|l| l.url);
        if let Some((name, address, client_tls)) =
            cluster.and_then(bind_target).filter(|(name, address, _)| {
                kernel.bound_to.as_ref() != Some(&(name.clone(), address.clone()))
                    || kernel.dashboard_link != link
            })
        {
            let bind = bind_code(&name, &address, client_tls.as_ref(), link.as_deref());
            match kernel.execute(&bind, true, &CellInput::refused(), &mut |_| {}, &|| false) {
                Ok(_) => {
                    kernel.bound_to = Some((name, address));
                    kernel.dashboard_link = link;
                }
                Err(stopped) => return Err(self.stopped(&mut state, stopped)),
            }
        }
        let mut result = None;
        let outcome = kernel.execute(
            code,
            false,
            input,
            &mut |m| match m.header.msg_type.as_str() {
                "stream" | "display_data" | "update_display_data" | "clear_output" => {
                    out.forward(m)
                }
                "execute_result" => result = Some(bundle_of(&m.content)),
                _ => {}
            },
            &|| interrupt.is_raised(),
        );
        match outcome {
            Ok(reply) => match reply["status"].as_str() {
                Some("ok") => Ok(result),
                Some("error") => Err(python_error(&reply)),
                other => Err(ErrorReport::new(
                    "PythonKernelError",
                    format!("the Python kernel answered {}", other.unwrap_or("nothing")),
                )),
            },
            Err(stopped) => Err(self.stopped(&mut state, stopped)),
        }
    }

    /// Passes a comm message of the frontend (`comm_open`, `comm_msg`, `comm_close`) to the
    /// sub-kernel, whose widgets live there; false when none runs.
    pub fn forward_comm(&self, message: &WireMessage, out: &Output) -> bool {
        let mut state = self.lock();
        let Some(kernel) = state.kernel.as_mut() else {
            return false;
        };
        *lock_output(&self.comm_output) = Some(out.clone());
        kernel.send_comm(message);
        true
    }

    /// The sub-kernel's open comms (of `target_name`, if given); none when no sub-kernel runs.
    pub fn comm_info(&self, target_name: Option<&str>) -> Map<String, Value> {
        match self.lock().kernel.as_mut() {
            Some(kernel) => kernel.comm_info(target_name),
            None => Map::new(),
        }
    }

    /// Publishes the sub-kernel's comm messages under the request last passed to it.
    fn comm_sink(&self) -> subkernel::CommSink {
        let output = self.comm_output.clone();
        Arc::new(move |m| {
            if let Some(out) = lock_output(&output).as_ref() {
                out.forward(m);
            }
        })
    }

    /// The cluster to bind to: the one of `%cluster use`, else the newest; only while it has
    /// not ended.
    fn live_cluster(&self) -> Option<ClusterView> {
        let chosen = self.lock().chosen_cluster.clone();
        let view = self.clusters.status(chosen.as_deref()).ok()?;
        (!matches!(view.state, ClusterState::Finished | ClusterState::Failed)).then_some(view)
    }

    fn stopped(&self, state: &mut BridgeState, stopped: Stopped) -> ErrorReport {
        let kernel = state.kernel.take().expect("a kernel was running");
        state.ended = Some(match &stopped {
            Stopped::Died(status) => status.to_string(),
            Stopped::Unresponsive => "ended after an interrupt it did not answer".to_owned(),
        });
        let evalue = match stopped {
            Stopped::Died(status) => format!(
                "the Python kernel died ({status}); its variables are gone, and the next \
                 %%python cell starts a fresh one.\n{}",
                kernel.log_tail()
            ),
            Stopped::Unresponsive => "the Python kernel did not stop after the interrupt, so it \
                 was ended; the next %%python cell starts a fresh one"
                .to_owned(),
        };
        drop(kernel);
        ErrorReport::new("PythonKernelDied", evalue)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BridgeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What binding to `cluster` takes, once its scheduler runs: its name, scheduler address and
/// client certificate.
fn bind_target(cluster: ClusterView) -> Option<(String, String, Option<ClientTls>)> {
    Some((cluster.name, cluster.scheduler?.address, cluster.tls))
}

/// The interpreter of the Python environment that `cluster` activates, if it has one here.
fn cluster_python(cluster: &ClusterView) -> Option<PythonChoice> {
    let env = cluster.python_env.as_deref()?;
    let python = PathBuf::from(expand_path(env)).join("bin/python");
    python.exists().then(|| PythonChoice {
        python,
        source: format!("python_env of cluster {} ({env})", cluster.name),
    })
}

/// `RUST_CLUSTER_KERNEL_PYTHON`, when it is set and not empty.
fn python_variable() -> Option<std::ffi::OsString> {
    std::env::var_os(PYTHON_VARIABLE).filter(|v| !v.is_empty())
}

fn lock_output(output: &Mutex<Option<Output>>) -> std::sync::MutexGuard<'_, Option<Output>> {
    output.lock().unwrap_or_else(|e| e.into_inner())
}

/// Python that points Dask at `address`: the environment variables for new imports and
/// processes, and Dask's config when dask is already imported. With `tls`, the client presents
/// the cluster's certificate and refuses plain TCP; without, those settings are removed. With
/// `dashboard`, Dask links the dashboard there; without, Dask's default link comes back.
fn bind_code(
    name: &str,
    address: &str,
    tls: Option<&ClientTls>,
    dashboard: Option<&str>,
) -> String {
    let quote = |s: &str| serde_json::to_string(s).expect("a string serialises");
    // Each TLS setting as (environment variable, Dask config key, value or null).
    let keys = [
        (
            tls::ENV_REQUIRE_ENCRYPTION,
            "distributed.comm.require-encryption",
        ),
        (tls::ENV_CA_FILE, "distributed.comm.tls.ca-file"),
        (tls::ENV_CLIENT[0], "distributed.comm.tls.client.cert"),
        (tls::ENV_CLIENT[1], "distributed.comm.tls.client.key"),
    ];
    let env: Vec<(&str, String)> = tls.map(ClientTls::env).unwrap_or_default();
    let settings: Vec<Value> = keys
        .iter()
        .map(|(var, key)| {
            let value = env.iter().find(|(v, _)| v == var).map(|(_, value)| value);
            serde_json::json!([var, key, value])
        })
        .collect();
    let settings = serde_json::to_string(&settings).expect("settings serialise");
    let dashboard = dashboard.map(dask_link_template);
    format!(
        "def _rck_bind(name, address, settings, link):\n\
        \x20   import json, os, sys\n\
        \x20   os.environ['DASK_SCHEDULER_ADDRESS'] = address\n\
        \x20   os.environ['RCK_CLUSTER_NAME'] = name\n\
        \x20   config = {{'scheduler-address': address}}\n\
        \x20   for var, key, value in json.loads(settings):\n\
        \x20       if value is None:\n\
        \x20           os.environ.pop(var, None)\n\
        \x20       else:\n\
        \x20           os.environ[var] = value\n\
        \x20       config[key] = True if value == 'True' else value\n\
        \x20   if link is None:\n\
        \x20       os.environ.pop('DASK_DISTRIBUTED__DASHBOARD__LINK', None)\n\
        \x20       config['distributed.dashboard.link'] = {default_link}\n\
        \x20   else:\n\
        \x20       os.environ['DASK_DISTRIBUTED__DASHBOARD__LINK'] = link\n\
        \x20       config['distributed.dashboard.link'] = link\n\
        \x20   if 'dask' in sys.modules:\n\
        \x20       import dask\n\
        \x20       dask.config.set(config)\n\
        _rck_bind({}, {}, {}, {})\n\
        del _rck_bind\n",
        quote(name),
        quote(address),
        quote(&settings),
        dashboard.as_deref().map_or("None".to_owned(), quote),
        default_link = quote(DASK_DEFAULT_LINK),
    )
}

/// Dask's own default of `distributed.dashboard.link`, restored when a cluster has no link
/// through the Jupyter server.
const DASK_DEFAULT_LINK: &str = "{scheme}://{host}:{port}/status";

fn bundle_of(content: &Value) -> Bundle {
    let map = |v: &Value| v.as_object().cloned().unwrap_or_else(Map::new);
    Bundle {
        data: map(&content["data"]),
        metadata: map(&content["metadata"]),
    }
}

fn python_error(reply: &Value) -> ErrorReport {
    let text = |k: &str| reply[k].as_str().unwrap_or_default().to_owned();
    let mut report = ErrorReport::new(text("ename"), text("evalue"));
    if let Some(lines) = reply["traceback"].as_array() {
        report.traceback = lines
            .iter()
            .filter_map(|l| l.as_str().map(str::to_owned))
            .collect();
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_code_quotes_what_it_is_given() {
        let code = bind_code(
            "x'); import os; os.system('id",
            "tcp://10.0.0.1:8786",
            None,
            None,
        );
        assert!(code
            .contains(r#"_rck_bind("x'); import os; os.system('id", "tcp://10.0.0.1:8786", "[["#));
    }

    #[test]
    fn bind_code_gives_a_tls_cluster_the_client_certificate() {
        let client = dask_slurm::tls::ClusterTls::in_dir("/s/it's/tls").client();
        let code = bind_code("c", "tls://10.0.0.1:8786", Some(&client), None);
        // The settings are one JSON text in a Python string.
        let settings = code
            .lines()
            .find_map(|l| l.strip_prefix(r#"_rck_bind("c", "tls://10.0.0.1:8786", "#))
            .unwrap()
            .trim_end_matches(", None)");
        let settings: Value =
            serde_json::from_str(&serde_json::from_str::<String>(settings).unwrap()).unwrap();
        assert_eq!(
            settings[0],
            serde_json::json!([
                "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION",
                "distributed.comm.require-encryption",
                "True"
            ])
        );
        assert_eq!(settings[2][2], "/s/it's/tls/client.pem");
        assert_eq!(settings[3][1], "distributed.comm.tls.client.key");
        let plain = bind_code("c", "tcp://10.0.0.1:8786", None, None);
        assert!(
            plain.contains(r#"\"distributed.comm.tls.ca-file\",null]"#),
            "{plain}"
        );
    }

    #[test]
    fn bind_code_tells_dask_the_dashboard_link_through_the_server() {
        let code = bind_code(
            "c",
            "tcp://10.0.0.1:8786",
            None,
            Some("/user/{a}/proxy/8787/status"),
        );
        assert!(
            code.trim_end().ends_with(
                r#""/user/{{a}}/proxy/8787/status")
del _rck_bind"#
            ),
            "{code}"
        );
        let without = bind_code("c", "tcp://10.0.0.1:8786", None, None);
        assert!(without.contains(", None)\ndel _rck_bind"), "{without}");
        assert!(
            without.contains(r#"= "{scheme}://{host}:{port}/status""#),
            "{without}"
        );
    }

    #[test]
    fn errors_keep_the_python_traceback() {
        let reply = serde_json::json!({"status": "error", "ename": "ZeroDivisionError",
            "evalue": "division by zero", "traceback": ["Traceback", "ZeroDivisionError: division by zero"]});
        let report = python_error(&reply);
        assert_eq!(report.ename, "ZeroDivisionError");
        assert_eq!(report.traceback.len(), 2);
    }
}
