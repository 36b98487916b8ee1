//! `%squeue [ARGS]`: your SLURM jobs as a table (squeue's filter and sort options pass through).

use std::sync::Arc;

use dask_slurm::manager::Clusters;

use super::{args, slurm_error, Magic, MagicCall, MagicContext, MagicError, MagicForms};
use crate::display::table::{Cell, Column, Table};
use crate::display::Bundle;

/// `%squeue`
pub struct Squeue {
    /// For its SLURM client.
    pub clusters: Arc<Clusters>,
}

/// Your jobs in the queue. Filter and sort options go to squeue (-p PARTITION, -t STATES,
/// -j IDS, --sort …); output format options are refused (the table has fixed columns).
#[derive(clap::Parser)]
#[command(name = "%squeue")]
struct Args {
    /// squeue options (e.g. -p multiple -t PENDING).
    #[arg(allow_hyphen_values = true, trailing_var_arg = true)]
    squeue_args: Vec<String>,
}

impl Magic for Squeue {
    fn name(&self) -> &'static str {
        "squeue"
    }
    fn summary(&self) -> &'static str {
        "your SLURM jobs as a table"
    }
    fn forms(&self) -> MagicForms {
        MagicForms::LINE
    }
    fn run(
        &self,
        call: &MagicCall<'_>,
        ctx: &mut MagicContext<'_>,
    ) -> Result<Option<Bundle>, MagicError> {
        let args = args::parse::<Args>(call)?;
        let jobs = ctx
            .slurm(&self.clusters)
            .my_jobs(&args.squeue_args)
            .map_err(slurm_error)?;
        let mut table = Table::new(
            "squeue: your jobs",
            [
                Column::left("Job"),
                Column::left("Name"),
                Column::left("Partition"),
                Column::left("State"),
                Column::right("Time"),
                Column::right("Limit"),
                Column::right("Nodes"),
                Column::left("Node list (reason)"),
            ],
        )
        .empty_message("no jobs in the queue");
        for j in &jobs {
            let where_ = if j.nodes.is_empty() {
                j.reason
                    .clone()
                    .map(|r| format!("({r})"))
                    .unwrap_or_default()
            } else {
                j.nodes.clone()
            };
            table.push([
                Cell::code(&j.id),
                Cell::text(&j.name),
                Cell::text(&j.partition),
                Cell::job_state(j.state.as_str()),
                Cell::text(&j.elapsed),
                Cell::text(&j.time_limit),
                Cell::from(j.node_count),
                Cell::text(where_),
            ]);
        }
        Ok(Some(table.to_bundle()))
    }
}
