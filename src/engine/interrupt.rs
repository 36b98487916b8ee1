//! [`Interrupter`]: stops the running cell from another thread — cargo and rustc while it
//! compiles (every variable survives), evcxr's runtime child while it runs (variables are lost).

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use rustix::process::{kill_process, Pid, Signal};

/// Stops the current cell from any thread (see the module docs).
#[derive(Clone, Default)]
pub struct Interrupter {
    /// evcxr's handle on its runtime child, once the context exists.
    pub(super) child: Arc<Mutex<Option<Arc<Mutex<std::process::Child>>>>>,
    /// Whether the engine runs Rust now (a magic such as `%%python` or `%%bash` may run instead;
    /// it stops its own processes, and the Rust variables must survive its interrupt).
    pub(super) running_rust: Arc<AtomicBool>,
}

/// What an interrupt stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// cargo/rustc were killed: the cell did not run, every variable is kept.
    Compilation,
    /// The runtime child was killed while the cell ran.
    Execution,
    /// Nothing was compiling or running.
    Nothing,
}

impl Interrupter {
    /// Kills the compilation if one runs, otherwise the runtime child if `cell_running`.
    pub fn interrupt(&self, cell_running: bool) -> Stopped {
        if !cell_running || !self.running_rust.load(std::sync::atomic::Ordering::SeqCst) {
            return Stopped::Nothing;
        }
        let child = self.child.lock().expect("interrupter lock").clone();
        let runtime_pid = child.as_ref().map(|c| c.lock().expect("child lock").id());
        let compilers = compiler_processes(runtime_pid);
        if !compilers.is_empty() {
            for pid in compilers {
                if let Some(pid) = Pid::from_raw(pid) {
                    // A descendant of ours; it may have ended already.
                    let _ = kill_process(pid, Signal::KILL);
                }
            }
            return Stopped::Compilation;
        }
        match child {
            Some(child) => {
                let _ = child.lock().expect("child lock").kill();
                Stopped::Execution
            }
            None => Stopped::Nothing,
        }
    }

    /// Kills evcxr's runtime child, whatever it does: for a cell that must not go on (its
    /// request for input got no answer). evcxr starts a new child for the next cell.
    pub(super) fn stop_runtime(&self) {
        let child = self.child.lock().expect("interrupter lock").clone();
        if let Some(child) = child {
            // It may have ended already.
            let _ = child.lock().expect("child lock").kill();
        }
    }
}

/// Clears a flag when dropped, whichever way the function that holds it returns.
pub(super) struct ClearOnDrop<'a>(pub(super) &'a AtomicBool);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The cargo processes evcxr started and everything below them (rustc, linkers); never the
/// runtime child, nor other children of the kernel (the `%%python` kernel, `%%bash`, mpirun).
fn compiler_processes(runtime_pid: Option<u32>) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut parents = std::collections::HashMap::new();
    let mut cargo = std::collections::HashSet::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // The command name is in parentheses and may hold spaces; the ppid follows the state.
            let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
                continue;
            };
            if let Some(ppid) = after.split(' ').nth(1).and_then(|s| s.parse::<i32>().ok()) {
                parents.insert(pid, ppid);
            }
            if stat.contains("(cargo)") {
                cargo.insert(pid);
            }
        }
    }
    let excluded = runtime_pid.map(|p| p as i32);
    parents
        .keys()
        .copied()
        .filter(|&pid| {
            let mut p = pid;
            for _ in 0..64 {
                if Some(p) == excluded {
                    return false;
                }
                match parents.get(&p) {
                    Some(&parent) if parent == me => return cargo.contains(&p),
                    Some(&parent) => p = parent,
                    None => return false,
                }
            }
            false
        })
        .collect()
}
