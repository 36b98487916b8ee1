//! [`Interrupt`]: the flag an `interrupt_request` (or SIGINT) raises for the running cell.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Raised by an interrupt; long-running magics poll it or sleep on it. Cheap to clone.
#[derive(Clone, Default)]
pub struct Interrupt(Arc<AtomicBool>);

/// The cell was interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

impl Interrupt {
    /// Raises the flag.
    pub fn raise(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Lowers the flag; done before each execution starts.
    pub fn reset(&self) {
        self.0.store(false, Ordering::SeqCst);
    }

    /// The flag itself, for code below the kernel that polls it while it waits for a process
    /// (the SLURM client ends a command when it is raised).
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.0.clone()
    }

    /// Whether an interrupt arrived since the last reset.
    pub fn is_raised(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// `Err(Interrupted)` if the flag is raised.
    pub fn check(&self) -> Result<(), Interrupted> {
        if self.is_raised() {
            Err(Interrupted)
        } else {
            Ok(())
        }
    }

    /// Sleeps for `duration`, waking early (with `Err`) if an interrupt arrives.
    pub fn sleep(&self, duration: Duration) -> Result<(), Interrupted> {
        let end = Instant::now() + duration;
        loop {
            self.check()?;
            let now = Instant::now();
            if now >= end {
                return Ok(());
            }
            std::thread::sleep((end - now).min(Duration::from_millis(50)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleep_wakes_on_interrupt() {
        let i = Interrupt::default();
        let j = i.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            j.raise();
        });
        let start = Instant::now();
        assert_eq!(i.sleep(Duration::from_secs(30)), Err(Interrupted));
        assert!(start.elapsed() < Duration::from_secs(10));
        t.join().unwrap();
        i.reset();
        assert!(i.check().is_ok());
    }
}
