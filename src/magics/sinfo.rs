//! `%sinfo`: the partitions, with idle and allocated nodes.

use std::sync::Arc;

use dask_slurm::manager::Clusters;

use super::{args, slurm_error, Magic, MagicCall, MagicContext, MagicError, MagicForms};
use crate::display::table::{Cell, Column, Table};
use crate::display::{Bundle, Tone};

/// `%sinfo`
pub struct Sinfo {
    /// For its SLURM client.
    pub clusters: Arc<Clusters>,
}

/// Which partitions there are and how many of their nodes are free.
#[derive(clap::Parser)]
#[command(name = "%sinfo")]
struct Args {}

impl Magic for Sinfo {
    fn name(&self) -> &'static str {
        "sinfo"
    }
    fn summary(&self) -> &'static str {
        "SLURM partitions with idle and allocated nodes"
    }
    fn forms(&self) -> MagicForms {
        MagicForms::LINE
    }
    fn run(
        &self,
        call: &MagicCall<'_>,
        ctx: &mut MagicContext<'_>,
    ) -> Result<Option<Bundle>, MagicError> {
        args::parse::<Args>(call)?;
        let partitions = ctx
            .slurm(&self.clusters)
            .partitions()
            .map_err(slurm_error)?;
        let mut table = Table::new(
            "sinfo: partitions",
            [
                Column::left("Partition"),
                Column::left("State"),
                Column::right("Time limit"),
                Column::right("Idle"),
                Column::right("Allocated"),
                Column::right("Other"),
                Column::right("Total"),
            ],
        )
        .empty_message("no partitions");
        for p in &partitions {
            let name = if p.is_default {
                format!("{} (default)", p.name)
            } else {
                p.name.clone()
            };
            let tone = if p.available == "up" {
                Tone::Success
            } else {
                Tone::Warn
            };
            table.push([
                Cell::code(name),
                Cell::badge(&p.available, tone),
                Cell::text(&p.time_limit),
                Cell::from(p.nodes_idle),
                Cell::from(p.nodes_allocated),
                Cell::from(p.nodes_other),
                Cell::from(p.nodes_total),
            ]);
        }
        Ok(Some(table.to_bundle()))
    }
}
