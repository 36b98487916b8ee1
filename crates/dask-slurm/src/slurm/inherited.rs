//! What a job submitted by the kernel must not inherit from the kernel's own environment.
//!
//! `sbatch` copies the submitter's environment into the new job, and SLURM's commands read many
//! variables there as options: `srun` takes `SLURM_CPUS_PER_TASK`, `SLURM_MEM_PER_CPU`,
//! `SLURM_CPU_BIND`, … as if they were its flags, `sbatch` takes `SBATCH_*`, and MPI launchers
//! take `PMI*`/`PMIX_*`. A kernel that runs inside a SLURM job (JupyterHub's batchspawner, Open
//! OnDemand) has all of those from *its* job, so every cluster job it submitted behaved like a
//! step of the notebook's job: on the lab SLURM, a notebook job with `--mem-per-cpu=100` made a
//! 2-node cluster job of `--mem=200M` whose `srun` died with "SLURM_MEM_PER_CPU,
//! SLURM_MEM_PER_GPU, and SLURM_MEM_PER_NODE are mutually exclusive".
//!
//! [`inherited_job_variables`] names the variables to remove before `sbatch` (and before a local
//! cluster's `mpirun`): everything of SLURM's and of the process managers', except the site's
//! configuration (`SLURM_CONF`, `SLURM_CLUSTERS`) and Open MPI's MCA parameters (`OMPI_MCA_*`, which sites and
//! environment modules set on purpose). `SBATCH_*` are options a user may set on a login node
//! (`SBATCH_ACCOUNT`); they are kept there and removed only inside a job, where they are the
//! notebook job's. What a profile's `env` sets is written into the job script and reaches the
//! job anyway.

/// Prefixes of variables that configure the job or step they are set in.
const JOB_PREFIXES: [&str; 5] = ["SLURM_", "SALLOC_", "SRUN_", "PMI", "OMPI_"];

/// Variables with those prefixes that are the user's or the site's, not a job's: the site's
/// configuration file, and the clusters of a multi-cluster site that every command must agree on.
const KEPT: [&str; 2] = ["SLURM_CONF", "SLURM_CLUSTERS"];

/// Open MPI's MCA parameters (`OMPI_MCA_btl_tcp_if_include`, …): site and user settings.
const KEPT_PREFIX: &str = "OMPI_MCA_";

/// `sbatch`'s own input variables: a user's on a login node, the notebook job's inside a job.
const SBATCH_PREFIX: &str = "SBATCH_";

/// The names among `names` (an environment's) that a new job must not inherit; `in_job`:
/// whether that environment is a SLURM job's (`SLURM_JOB_ID` is set).
pub fn inherited_job_variables<'a>(
    names: impl IntoIterator<Item = &'a str>,
    in_job: bool,
) -> Vec<String> {
    names
        .into_iter()
        .filter(|name| {
            let job_setting = JOB_PREFIXES.iter().any(|p| name.starts_with(p))
                && !KEPT.contains(name)
                && !name.starts_with(KEPT_PREFIX);
            job_setting || (in_job && name.starts_with(SBATCH_PREFIX))
        })
        .map(str::to_owned)
        .collect()
}

/// [`inherited_job_variables`] of this process's environment.
pub fn inherited_here() -> Vec<String> {
    let names: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .collect();
    let in_job = std::env::var_os("SLURM_JOB_ID").is_some();
    inherited_job_variables(names.iter().map(String::as_str), in_job)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Part of the environment of a kernel that batchspawner started in an `srun` step.
    const NOTEBOOK_JOB: [&str; 16] = [
        "SLURM_JOB_ID",
        "SLURM_CPUS_PER_TASK",
        "SLURM_MEM_PER_CPU",
        "SLURM_CPU_BIND",
        "SLURM_STEP_ID",
        "SLURM_CONF",
        "SBATCH_ACCOUNT",
        "SALLOC_PARTITION",
        "SRUN_CPUS_PER_TASK",
        "PMI_RANK",
        "PMIX_NAMESPACE",
        "OMPI_COMM_WORLD_RANK",
        "OMPI_MCA_btl_tcp_if_include",
        "PATH",
        "HOME",
        "MY_SLURM_NOTE",
    ];

    #[test]
    fn a_notebook_jobs_settings_are_not_passed_on() {
        let removed = inherited_job_variables(NOTEBOOK_JOB, true);
        assert_eq!(
            removed,
            [
                "SLURM_JOB_ID",
                "SLURM_CPUS_PER_TASK",
                "SLURM_MEM_PER_CPU",
                "SLURM_CPU_BIND",
                "SLURM_STEP_ID",
                "SBATCH_ACCOUNT",
                "SALLOC_PARTITION",
                "SRUN_CPUS_PER_TASK",
                "PMI_RANK",
                "PMIX_NAMESPACE",
                "OMPI_COMM_WORLD_RANK",
            ]
        );
    }

    #[test]
    fn a_login_nodes_sbatch_options_the_site_config_and_mca_parameters_stay() {
        let removed = inherited_job_variables(NOTEBOOK_JOB, false);
        for kept in [
            "SBATCH_ACCOUNT",
            "SLURM_CONF",
            "OMPI_MCA_btl_tcp_if_include",
            "PATH",
            "MY_SLURM_NOTE",
        ] {
            assert!(!removed.iter().any(|r| r == kept), "{kept} removed");
        }
        assert!(removed.iter().any(|r| r == "SLURM_MEM_PER_CPU"));
    }
}
