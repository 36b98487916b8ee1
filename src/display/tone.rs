//! Tones: the few colours a state can have. Each maps to one of JupyterLab's theme colours
//! (`--jp-success-color1`, …) through a `rck-tone-*` class, so light and dark themes both work.

use dask_slurm::model::{ClusterState, JobState};

/// The colour of a badge, a bar or a card's edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tone {
    /// Nothing to report: ended, unknown (`--jp-layout-color3`).
    Neutral,
    /// Something is moving along (`--jp-brand-color1`).
    Brand,
    /// Healthy and running (`--jp-success-color1`).
    Success,
    /// Waiting or winding down (`--jp-warn-color1`).
    Warn,
    /// Failed (`--jp-error-color1`).
    Error,
}

impl Tone {
    /// The CSS class that carries this tone in the templates' style sheet.
    pub fn css_class(self) -> &'static str {
        match self {
            Tone::Neutral => "rck-tone-neutral",
            Tone::Brand => "rck-tone-brand",
            Tone::Success => "rck-tone-success",
            Tone::Warn => "rck-tone-warn",
            Tone::Error => "rck-tone-error",
        }
    }

    /// The tone of a cluster's overall state.
    pub fn of_cluster(state: ClusterState) -> Tone {
        match state {
            ClusterState::Pending | ClusterState::Cancelling => Tone::Warn,
            ClusterState::Starting => Tone::Brand,
            ClusterState::Running => Tone::Success,
            ClusterState::Finished => Tone::Neutral,
            ClusterState::Failed => Tone::Error,
        }
    }

    /// The tone of a cluster's job.
    ///
    /// ```
    /// use dask_slurm::model::JobState;
    /// use rust_cluster_kernel::display::Tone;
    /// assert_eq!(Tone::of_job(&JobState::Submitted), Tone::Warn);
    /// assert_eq!(Tone::of_job(&JobState::OutOfMemory), Tone::Error);
    /// ```
    pub fn of_job(state: &JobState) -> Tone {
        match state {
            JobState::Running => Tone::Success,
            JobState::Submitted | JobState::Pending | JobState::Suspended => Tone::Warn,
            JobState::Configuring | JobState::Completing => Tone::Brand,
            JobState::Failed
            | JobState::Timeout
            | JobState::NodeFail
            | JobState::OutOfMemory
            | JobState::BootFail
            | JobState::Deadline
            | JobState::Preempted => Tone::Error,
            JobState::Completed | JobState::Cancelled | JobState::Gone => Tone::Neutral,
            // States SLURM may add (REQUEUED, RESIZING, …) are read as squeue prints them.
            other => Tone::of_job_state(other.as_str()),
        }
    }

    /// The tone of a SLURM job state as `squeue`/`sacct` print it, long (`RUNNING`,
    /// `CANCELLED by 1000`) or short (`R`, `PD`). Unknown states are neutral.
    ///
    /// ```
    /// use rust_cluster_kernel::display::Tone;
    /// assert_eq!(Tone::of_job_state("PENDING"), Tone::Warn);
    /// assert_eq!(Tone::of_job_state("R"), Tone::Success);
    /// assert_eq!(Tone::of_job_state("OUT_OF_MEMORY"), Tone::Error);
    /// ```
    pub fn of_job_state(state: &str) -> Tone {
        let word = state.split_whitespace().next().unwrap_or("");
        match word.to_ascii_uppercase().as_str() {
            "RUNNING" | "R" => Tone::Success,
            "PENDING" | "PD" | "REQUEUED" | "RQ" | "REQUEUE_HOLD" | "RH" | "REQUEUE_FED" | "RF"
            | "SUSPENDED" | "S" | "STOPPED" | "ST" | "RESV_DEL_HOLD" | "RD" => Tone::Warn,
            "CONFIGURING" | "CF" | "COMPLETING" | "CG" | "RESIZING" | "RS" | "SIGNALING" | "SI"
            | "STAGE_OUT" | "SO" => Tone::Brand,
            "FAILED" | "F" | "TIMEOUT" | "TO" | "NODE_FAIL" | "NF" | "OUT_OF_MEMORY" | "OOM"
            | "BOOT_FAIL" | "BF" | "DEADLINE" | "DL" | "PREEMPTED" | "PR" | "SPECIAL_EXIT"
            | "SE" | "REVOKED" | "RV" => Tone::Error,
            _ => Tone::Neutral,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_states_map_to_tones() {
        assert_eq!(Tone::of_job_state("RUNNING"), Tone::Success);
        assert_eq!(Tone::of_job_state("PENDING"), Tone::Warn);
        assert_eq!(Tone::of_job_state("COMPLETING"), Tone::Brand);
        assert_eq!(Tone::of_job_state("CANCELLED by 1000"), Tone::Neutral);
        assert_eq!(Tone::of_job_state("COMPLETED"), Tone::Neutral);
        assert_eq!(Tone::of_job_state("TIMEOUT"), Tone::Error);
        assert_eq!(Tone::of_job_state("NODE_FAIL"), Tone::Error);
        assert_eq!(Tone::of_job_state("UNKNOWN"), Tone::Neutral);
        assert_eq!(Tone::of_job_state(""), Tone::Neutral);
        assert_eq!(Tone::of_job_state("pd"), Tone::Warn);
    }

    #[test]
    fn the_states_a_user_must_tell_apart_look_different() {
        // Waiting, starting, running, failed and over each need a colour of their own;
        // cancelling may share waiting's (both are "not ready, nothing wrong").
        let tones: Vec<Tone> = [
            ClusterState::Pending,
            ClusterState::Starting,
            ClusterState::Running,
            ClusterState::Failed,
            ClusterState::Finished,
        ]
        .map(Tone::of_cluster)
        .to_vec();
        for (i, a) in tones.iter().enumerate() {
            assert!(
                !tones[i + 1..].contains(a),
                "{a:?} is used twice: {tones:?}"
            );
        }
    }

    #[test]
    fn every_tone_has_a_style() {
        let style = include_str!("../../templates/rck_style.html");
        for tone in [
            Tone::Neutral,
            Tone::Brand,
            Tone::Success,
            Tone::Warn,
            Tone::Error,
        ] {
            assert!(
                style.contains(&format!(".{}", tone.css_class())),
                "no rule for {tone:?} in templates/rck_style.html"
            );
        }
    }
}
