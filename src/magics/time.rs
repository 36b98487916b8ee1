//! `%time CODE` and `%%time`: run code and report the wall-clock time it took.

use std::time::Instant;

use super::{args, Magic, MagicCall, MagicContext, MagicError, MagicForms};
use crate::display::Bundle;

/// `%time` / `%%time`
pub struct Time;

/// Runs the rest of the line (`%time`) or the cell body (`%%time`) and prints the wall time.
#[derive(clap::Parser)]
#[command(override_usage = "%time CODE\n       %%time  (the cell body is the code)")]
struct Args {}

impl Magic for Time {
    fn name(&self) -> &'static str {
        "time"
    }
    fn summary(&self) -> &'static str {
        "run code and print how long it took"
    }
    fn forms(&self) -> MagicForms {
        MagicForms::BOTH
    }
    fn run(
        &self,
        call: &MagicCall<'_>,
        ctx: &mut MagicContext<'_>,
    ) -> Result<Option<Bundle>, MagicError> {
        let code = args::code_of::<Args>(call)?;
        let start = Instant::now();
        let result = ctx.cells.run_cell(code, ctx.out);
        ctx.out.stdout(&format!(
            "Wall time: {}\n",
            human_duration(start.elapsed().as_secs_f64())
        ));
        result.map_err(MagicError::Cell)
    }
}

/// `0.0123` → `12.3 ms`, `2.5` → `2.50 s`.
fn human_duration(secs: f64) -> String {
    if secs < 1e-3 {
        format!("{:.0} µs", secs * 1e6)
    } else if secs < 1.0 {
        format!("{:.1} ms", secs * 1e3)
    } else {
        format!("{secs:.2} s")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_read_well() {
        assert_eq!(super::human_duration(0.0123), "12.3 ms");
        assert_eq!(super::human_duration(2.5), "2.50 s");
        assert_eq!(super::human_duration(0.00002), "20 µs");
    }
}
