//! The cell router: decides whether a cell is a cell magic, line magics, Rust, or a mix, and
//! runs each part where it belongs.

use crate::display::Bundle;
use crate::engine::{lost_variables_sentence, CellEvent, RustEngine};
use crate::magics::parse::{plan_cell, CellPlan};
use crate::magics::{CellRunner, MagicCall, MagicContext, MagicError, Registry};

use crate::cell::{CellInput, ErrorReport, Interrupt, Output, StreamName};

/// Runs cells: magics through the [`Registry`], Rust through the [`RustEngine`].
pub struct Router<'a> {
    /// The Rust engine.
    pub engine: &'a dyn RustEngine,
    /// Every magic.
    pub registry: &'a Registry,
    /// The interrupt flag of the running request.
    pub interrupt: &'a Interrupt,
    /// The running request's stdin: input requests to its frontend.
    pub input: &'a CellInput,
}

impl CellRunner for Router<'_> {
    fn run_cell(&mut self, code: &str, out: &Output) -> Result<Option<Bundle>, ErrorReport> {
        match plan_cell(code) {
            CellPlan::CellMagic(call) => self.run_magic(&call, out),
            CellPlan::Lines { magics, rust } => {
                let mut last = None;
                for call in &magics {
                    if let Some(bundle) = last.take() {
                        out.display(&bundle);
                    }
                    last = self.run_magic(call, out)?;
                }
                if rust.trim().is_empty() {
                    return Ok(last);
                }
                if let Some(bundle) = last.take() {
                    out.display(&bundle);
                }
                self.run_rust(rust, out)
            }
        }
    }
}

impl Router<'_> {
    fn run_magic(
        &mut self,
        call: &MagicCall<'_>,
        out: &Output,
    ) -> Result<Option<Bundle>, ErrorReport> {
        let Some(magic) = self.registry.get(call.name) else {
            return Err(MagicError::Unknown(call.name.to_owned()).into_report());
        };
        let forms = magic.forms();
        let is_cell = call.body.is_some();
        if is_cell && !forms.cell {
            return Err(MagicError::WrongForm(format!(
                "%%{0} is not a cell magic; use %{0} on a line",
                call.name
            ))
            .into_report());
        }
        if !is_cell && !forms.line {
            return Err(MagicError::WrongForm(format!(
                "%{0} is a cell magic: put %%{0} on the first line of the cell",
                call.name
            ))
            .into_report());
        }
        let registry = self.registry.clone();
        let interrupt = self.interrupt.clone();
        let mut ctx = MagicContext {
            out,
            interrupt: &interrupt,
            input: self.input,
            cells: self,
            registry: &registry,
        };
        match magic.run(call, &mut ctx) {
            Ok(value) => Ok(value),
            Err(MagicError::Help(text)) => {
                out.stdout(&text);
                Ok(None)
            }
            Err(e) => Err(e.into_report()),
        }
    }

    fn run_rust(&mut self, code: &str, out: &Output) -> Result<Option<Bundle>, ErrorReport> {
        if code.lines().any(|l| l.trim() == ":quit") {
            return Err(ErrorReport::new(
                "UsageError",
                ":quit would end the kernel; use Kernel → Shut Down (or Restart) in JupyterLab instead",
            ));
        }
        // A panic prints `thread '…' (tid) panicked at FILE:LINE:COL:`, the message, then a
        // backtrace on stderr; evcxr still answers Ok. The message becomes the error value and
        // the backtrace goes into the error's traceback instead of the stream.
        let mut panic: Option<Vec<String>> = None;
        // Rust prints a blank line before the panic line; hold blank stderr lines until we know.
        let mut held_blank_lines = 0;
        let input = self.input;
        let value = self.engine.execute(code, input, &mut |event| match event {
            CellEvent::Stream(StreamName::Stderr, text) if panic.is_some() => {
                panic
                    .as_mut()
                    .expect("checked")
                    .push(text.trim_end().to_owned());
            }
            CellEvent::Stream(StreamName::Stderr, text) if text == "\n" => held_blank_lines += 1,
            CellEvent::Stream(name, text) => {
                if name == StreamName::Stderr
                    && text.starts_with("thread '")
                    && text.contains(" panicked at ")
                {
                    panic = Some(vec![text.trim_end().to_owned()]);
                } else {
                    out.stream(StreamName::Stderr, &"\n".repeat(held_blank_lines));
                    out.stream(name, &text);
                }
                held_blank_lines = 0;
            }
            CellEvent::Display(bundle) => out.display(&bundle),
            CellEvent::ClearOutput { wait } => out.clear_output(wait),
        });
        out.stream(StreamName::Stderr, &"\n".repeat(held_blank_lines));
        if self.interrupt.is_raised() {
            let detail = match &value {
                Err(ErrorReport {
                    lost_variables: Some(lost),
                    ..
                }) => {
                    format!(
                        "the cell was stopped while it ran; {}",
                        lost_variables_sentence(lost)
                    )
                }
                _ => "interrupted while compiling; the cell did not run and every variable is kept"
                    .to_owned(),
            };
            return Err(ErrorReport::new("KeyboardInterrupt", detail));
        }
        let value = value?;
        if let Some(lines) = panic {
            let message = lines.get(1).cloned().unwrap_or_else(|| lines[0].clone());
            let mut report = ErrorReport::new("Panic", message);
            report.traceback.extend(lines);
            return Err(report);
        }
        if let Some(timing) = &value.timing {
            out.stream(StreamName::Stdout, &format!("{timing}\n"));
        }
        // `println!(…)` as the last expression evaluates to `()`: nothing worth showing.
        if let Some(bundle) = &value.result {
            if bundle.data.len() == 1
                && bundle.data.get("text/plain").and_then(|v| v.as_str()) == Some("()")
            {
                return Ok(None);
            }
        }
        Ok(value.result)
    }
}
