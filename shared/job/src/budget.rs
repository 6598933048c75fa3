//! The wall-clock budget of one run (the Lambda invocation's deadline).

use super::*;

/// When the run must be over (the Lambda invocation's deadline, minus a reserve for the report).
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Work must be finished by then (`None`: no limit).
    pub finish_by: Option<Instant>,
    /// Time kept after training for evaluation, the gate, publishing and the report.
    pub reserve: Duration,
}

impl Budget {
    pub const UNLIMITED: Budget = Budget {
        finish_by: None,
        reserve: Duration::ZERO,
    };

    /// Whether a step taking about `next` may still start.
    pub fn allows(&self, next: Duration) -> bool {
        self.finish_by
            .is_none_or(|end| Instant::now() + next + self.reserve <= end)
    }

    pub(crate) fn check(&self, step: &str) -> Result<(), JobError> {
        if self.allows(Duration::ZERO) {
            Ok(())
        } else {
            Err(self.timeout(step))
        }
    }

    pub(crate) fn timeout(&self, step: &str) -> JobError {
        JobError::new(
            FailureKind::Timeout,
            false,
            format!(
                "stopped {step}: the run would not finish before its deadline ({:.0} s reserved for publishing and this report); give the function a longer timeout, or train on fewer rows or epochs",
                self.reserve.as_secs_f64()
            ),
        )
    }
}
