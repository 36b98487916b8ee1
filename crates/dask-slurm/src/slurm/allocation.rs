//! The SLURM job the kernel itself runs in (JupyterHub's batchspawner, Open OnDemand), and how a
//! Dask cluster fits into it.
//!
//! SLURM describes a job to the processes inside it through the environment: `SLURM_JOB_ID`,
//! `SLURM_JOB_NODELIST` (compressed, `n[1-3]`), `SLURM_JOB_CPUS_PER_NODE` (`40(x2),12`),
//! `SLURM_MEM_PER_NODE` or `SLURM_MEM_PER_CPU` (MB), and `SLURMD_NODENAME`, the node this
//! process is on. [`Allocation::from_env`] reads them once (the kernel's own environment is
//! never scrubbed; only what it starts is), and [`Allocation::layout`] sizes a cluster from
//! them: the threads per worker of the spec, as many workers per node as the node's CPUs hold,
//! and a slice of the kernel's own node kept for the notebook (its cells, its cargo builds).

use super::{Slurm, SlurmError};

/// Why a cluster cannot be placed in the kernel's allocation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocationError {
    /// The kernel does not run inside a SLURM job.
    #[error("the kernel does not run inside a SLURM job (SLURM_JOB_ID is not set)")]
    NotInJob,
    /// A variable SLURM sets in every job is missing or unreadable.
    #[error("job {job}: {variable} is {problem}")]
    Variable {
        /// The job.
        job: String,
        /// The variable.
        variable: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The allocation has no CPU left for a worker once the notebook's share is kept.
    #[error(
        "job {job} has no room for a worker: it holds {held}, and {kept} of {node} are kept for \
         the notebook (notebook_cores, notebook_mem)"
    )]
    NoRoom {
        /// The job.
        job: String,
        /// What the job holds, e.g. `4 CPUs on n1`.
        held: String,
        /// What is kept, e.g. `2 CPUs and 4096 MiB`.
        kept: String,
        /// The kernel's node.
        node: String,
    },
}

/// One node of the allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocatedNode {
    /// The node's SLURM name (`n1`, `uc2n001`).
    pub name: String,
    /// CPUs the job holds on it.
    pub cpus: u32,
    /// Memory the job holds on it, in MiB (SLURM's "MB"), when the job asked for memory.
    pub mem_mib: Option<u64>,
}

/// The SLURM job the kernel runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// The job's id.
    pub job_id: String,
    /// The node the kernel runs on (`SLURMD_NODENAME`).
    pub this_node: String,
    /// Every node of the job, in SLURM's order.
    pub nodes: Vec<AllocatedNode>,
}

/// How a cluster fits into an allocation: the scheduler on the kernel's node, and so many
/// workers of so many threads on each node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocationLayout {
    /// The job the workers run in, as steps.
    pub job_id: String,
    /// The node of the scheduler: the kernel's own.
    pub scheduler_node: String,
    /// Threads per worker.
    pub threads: u32,
    /// The nodes that get workers, each with its share.
    pub nodes: Vec<NodeShare>,
}

/// The workers of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeShare {
    /// The node's SLURM name.
    pub node: String,
    /// Dask workers on it (one `dask worker --nworkers` step).
    pub workers: u32,
    /// Memory each of them may use, in MiB, when the job holds a known amount of memory.
    pub worker_memory_mib: Option<u64>,
}

impl AllocationLayout {
    /// Workers over all nodes.
    pub fn workers(&self) -> u32 {
        self.nodes.iter().map(|n| n.workers).sum()
    }

    /// The most workers on one node.
    pub fn most_workers_per_node(&self) -> u32 {
        self.nodes.iter().map(|n| n.workers).max().unwrap_or(0)
    }
}

/// The share of a node's memory that its workers may fill: the rest is for the Python
/// processes themselves and the system, as for a batch cluster's derived limit.
const WORKER_MEMORY_SHARE: f64 = 0.9;

impl Allocation {
    /// The allocation of the job this process runs in, or `None` outside a job. The compressed
    /// node list is expanded by `scontrol show hostnames`.
    pub fn from_env(slurm: &Slurm) -> Result<Option<Allocation>, AllocationError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let Some(job_id) = var("SLURM_JOB_ID") else {
            return Ok(None);
        };
        let missing = |variable: &'static str| AllocationError::Variable {
            job: job_id.clone(),
            variable,
            problem: "not set".to_owned(),
        };
        let node_list = var("SLURM_JOB_NODELIST")
            .or_else(|| var("SLURM_NODELIST"))
            .ok_or_else(|| missing("SLURM_JOB_NODELIST"))?;
        let names = slurm
            .hostnames(&node_list)
            .map_err(|e| AllocationError::Variable {
                job: job_id.clone(),
                variable: "SLURM_JOB_NODELIST",
                problem: format!("not a node list scontrol can expand ({e})"),
            })?;
        Allocation::from_parts(
            &job_id,
            names,
            &var("SLURM_JOB_CPUS_PER_NODE").ok_or_else(|| missing("SLURM_JOB_CPUS_PER_NODE"))?,
            var("SLURM_MEM_PER_NODE").as_deref(),
            var("SLURM_MEM_PER_CPU").as_deref(),
            &var("SLURMD_NODENAME").ok_or_else(|| missing("SLURMD_NODENAME"))?,
        )
        .map(Some)
    }

    /// The allocation from SLURM's variables: the expanded node names, `cpus_per_node` as
    /// SLURM writes it, memory per node or per CPU (SLURM's "MB", which are MiB), and the
    /// kernel's node.
    pub fn from_parts(
        job_id: &str,
        names: Vec<String>,
        cpus_per_node: &str,
        mem_per_node: Option<&str>,
        mem_per_cpu: Option<&str>,
        this_node: &str,
    ) -> Result<Allocation, AllocationError> {
        let bad = |variable: &'static str, problem: String| AllocationError::Variable {
            job: job_id.to_owned(),
            variable,
            problem,
        };
        let cpus = parse_cpus_per_node(cpus_per_node).ok_or_else(|| {
            bad(
                "SLURM_JOB_CPUS_PER_NODE",
                format!("{cpus_per_node:?}, not a list like 40(x2),12"),
            )
        })?;
        if cpus.len() != names.len() {
            return Err(bad(
                "SLURM_JOB_CPUS_PER_NODE",
                format!(
                    "{cpus_per_node:?}: {} node(s), but the node list has {}",
                    cpus.len(),
                    names.len()
                ),
            ));
        }
        if let Some(name) = names.iter().find(|n| !is_node_name(n)) {
            return Err(bad(
                "SLURM_JOB_NODELIST",
                format!("{name:?}, not a node name (letters, digits, . _ -)"),
            ));
        }
        if !names.iter().any(|n| n == this_node) {
            return Err(bad(
                "SLURMD_NODENAME",
                format!("{this_node:?}, not one of the job's nodes"),
            ));
        }
        let megabytes = |variable: &'static str, value: Option<&str>| {
            value
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| bad(variable, format!("{v:?}, not a number of MB")))
                })
                .transpose()
        };
        let per_node = megabytes("SLURM_MEM_PER_NODE", mem_per_node)?.filter(|&mb| mb > 0);
        let per_cpu = megabytes("SLURM_MEM_PER_CPU", mem_per_cpu)?.filter(|&mb| mb > 0);
        let nodes = names
            .into_iter()
            .zip(cpus)
            .map(|(name, cpus)| AllocatedNode {
                name,
                cpus,
                mem_mib: per_node.or(per_cpu.map(|mb| mb * u64::from(cpus))),
            })
            .collect();
        Ok(Allocation {
            job_id: job_id.to_owned(),
            this_node: this_node.to_owned(),
            nodes,
        })
    }

    /// The cluster that fits: workers of `threads` threads (fewer when no node has that many
    /// CPUs free) on every node, the kernel's node keeping `notebook_cores` CPUs and
    /// `notebook_mem_mib` MiB for the notebook. Each worker's memory is 90 % of what its node
    /// has left, shared among the node's workers.
    pub fn layout(
        &self,
        threads: u32,
        notebook_cores: u32,
        notebook_mem_mib: u64,
    ) -> Result<AllocationLayout, AllocationError> {
        let free = |node: &AllocatedNode| {
            let mine = node.name == self.this_node;
            let cpus = if mine {
                node.cpus.saturating_sub(notebook_cores)
            } else {
                node.cpus
            };
            let mem = node.mem_mib.map(|mb| {
                if mine {
                    mb.saturating_sub(notebook_mem_mib)
                } else {
                    mb
                }
            });
            // A node whose memory is all kept has no room, whatever its CPUs.
            if mem == Some(0) {
                (0, mem)
            } else {
                (cpus, mem)
            }
        };
        let most_free = self.nodes.iter().map(|n| free(n).0).max().unwrap_or(0);
        let threads = threads.min(most_free);
        if threads == 0 {
            return Err(self.no_room(notebook_cores, notebook_mem_mib));
        }
        let nodes: Vec<NodeShare> = self
            .nodes
            .iter()
            .filter_map(|node| {
                let (cpus, mem) = free(node);
                let workers = cpus / threads;
                (workers > 0).then(|| NodeShare {
                    node: node.name.clone(),
                    workers,
                    worker_memory_mib: mem.map(|mib| {
                        (mib as f64 * WORKER_MEMORY_SHARE / f64::from(workers)).floor() as u64
                    }),
                })
            })
            .collect();
        Ok(AllocationLayout {
            job_id: self.job_id.clone(),
            scheduler_node: self.this_node.clone(),
            threads,
            nodes,
        })
    }

    fn no_room(&self, notebook_cores: u32, notebook_mem_mib: u64) -> AllocationError {
        let held = self
            .nodes
            .iter()
            .map(|n| match n.mem_mib {
                Some(mib) => format!("{} CPUs and {mib} MiB on {}", n.cpus, n.name),
                None => format!("{} CPUs on {}", n.cpus, n.name),
            })
            .collect::<Vec<_>>()
            .join(", ");
        AllocationError::NoRoom {
            job: self.job_id.clone(),
            held,
            kept: format!("{notebook_cores} CPUs and {notebook_mem_mib} MiB"),
            node: self.this_node.clone(),
        }
    }
}

/// `SLURM_JOB_CPUS_PER_NODE` (`40(x2),12`) as one count per node.
pub fn parse_cpus_per_node(text: &str) -> Option<Vec<u32>> {
    let mut counts = Vec::new();
    for item in text.split(',') {
        let (count, repeat) = match item.split_once("(x") {
            Some((count, rest)) => (count, rest.strip_suffix(')')?.parse::<usize>().ok()?),
            None => (item, 1),
        };
        let count = count.parse::<u32>().ok()?;
        if repeat == 0 || repeat > 100_000 {
            return None;
        }
        counts.extend(std::iter::repeat_n(count, repeat));
    }
    Some(counts)
}

/// A node name as the job scripts may use it unquoted: letters, digits, `.`, `_`, `-`.
fn is_node_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl Slurm {
    /// The node names of a compressed list (`n[1-3],gpu1`), from `scontrol show hostnames`.
    pub fn hostnames(&self, node_list: &str) -> Result<Vec<String>, SlurmError> {
        if node_list.starts_with('-') || node_list.chars().any(char::is_whitespace) {
            return Err(SlurmError::Argument {
                arg: node_list.to_owned(),
                reason: "not a node list".to_owned(),
            });
        }
        let args = vec![
            "show".to_owned(),
            "hostnames".to_owned(),
            node_list.to_owned(),
        ];
        let out = self.run("scontrol", &args)?;
        Ok(out.stdout.split_whitespace().map(str::to_owned).collect())
    }

    /// The steps of job `job_id` that squeue lists, as (step id `JOB.STEP`, step name).
    pub fn steps(&self, job_id: &str) -> Result<Vec<(String, String)>, SlurmError> {
        super::check_job_id(job_id)?;
        let args = vec![
            "-h".to_owned(),
            "--steps".to_owned(),
            "-j".to_owned(),
            job_id.to_owned(),
            "-o".to_owned(),
            format!("%i{}%j", super::SEP),
        ];
        let out = self.run("squeue", &args)?;
        Ok(out
            .stdout
            .lines()
            .filter_map(|line| line.split_once(super::SEP))
            .map(|(id, name)| (id.trim().to_owned(), name.trim().to_owned()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab(mem_per_node: Option<&str>) -> Allocation {
        Allocation::from_parts(
            "1234",
            vec!["n1".into(), "n2".into()],
            "4(x2)",
            mem_per_node,
            None,
            "n1",
        )
        .unwrap()
    }

    #[test]
    fn cpus_per_node_as_slurm_writes_it() {
        assert_eq!(parse_cpus_per_node("40(x2),12"), Some(vec![40, 40, 12]));
        assert_eq!(parse_cpus_per_node("4"), Some(vec![4]));
        for bad in ["", "4(x", "4(x0)", "x(x2)", "4,,2", "4(x2"] {
            assert_eq!(parse_cpus_per_node(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_kernels_node_keeps_the_notebooks_share() {
        let layout = lab(Some("4096")).layout(1, 2, 1024).unwrap();
        assert_eq!(layout.scheduler_node, "n1");
        assert_eq!(layout.threads, 1);
        let shares: Vec<(&str, u32)> = layout
            .nodes
            .iter()
            .map(|n| (n.node.as_str(), n.workers))
            .collect();
        assert_eq!(shares, [("n1", 2), ("n2", 4)]);
        assert_eq!(layout.workers(), 6);
        // 90 % of (4096 - 1024) MiB over 2 workers, and of 4096 MiB over 4.
        assert_eq!(layout.nodes[0].worker_memory_mib, Some(1382));
        assert_eq!(layout.nodes[1].worker_memory_mib, Some(921));
    }

    #[test]
    fn threads_shrink_to_the_largest_free_node_and_memory_may_be_unknown() {
        let layout = lab(None).layout(20, 2, 4096).unwrap();
        assert_eq!(layout.threads, 4);
        assert_eq!(layout.nodes.len(), 1, "{layout:?}");
        assert_eq!(layout.nodes[0].node, "n2");
        assert_eq!(layout.nodes[0].worker_memory_mib, None);
    }

    #[test]
    fn memory_per_cpu_counts_per_node() {
        let a =
            Allocation::from_parts("7", vec!["a".into()], "8", None, Some("1000"), "a").unwrap();
        assert_eq!(a.nodes[0].mem_mib, Some(8000));
    }

    #[test]
    fn a_job_too_small_for_a_worker_says_what_it_holds_and_keeps() {
        let one =
            Allocation::from_parts("9", vec!["n1".into()], "2", Some("4096"), None, "n1").unwrap();
        let e = one.layout(1, 2, 1024).unwrap_err();
        assert_eq!(
            e.to_string(),
            "job 9 has no room for a worker: it holds 2 CPUs and 4096 MiB on n1, and 2 CPUs and \
             1024 MiB of n1 are kept for the notebook (notebook_cores, notebook_mem)"
        );
        // All memory kept: no room either, whatever the CPUs.
        let big =
            Allocation::from_parts("9", vec!["n1".into()], "8", Some("4096"), None, "n1").unwrap();
        assert!(big.layout(1, 2, 4096).is_err());
    }

    #[test]
    fn variables_that_do_not_describe_the_job_are_refused() {
        let parts = |names: Vec<&str>, cpus: &str, node: &str| {
            Allocation::from_parts(
                "5",
                names.into_iter().map(str::to_owned).collect(),
                cpus,
                None,
                None,
                node,
            )
        };
        assert!(
            parts(vec!["n1", "n2"], "4", "n1").is_err(),
            "count mismatch"
        );
        assert!(parts(vec!["n1"], "4", "n9").is_err(), "not our node");
        assert!(parts(vec!["n1;id"], "4", "n1;id").is_err(), "odd name");
        assert!(parts(vec!["n1"], "four", "n1").is_err());
        let mem = Allocation::from_parts("5", vec!["n1".into()], "4", Some("lots"), None, "n1");
        assert!(matches!(
            mem,
            Err(AllocationError::Variable {
                variable: "SLURM_MEM_PER_NODE",
                ..
            })
        ));
    }
}
