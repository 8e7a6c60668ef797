//! Chores a worker does now and then rather than on every round (each costs a round trip).

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Says when a chore is due: at once the first time, then once per period.
#[derive(Debug)]
pub struct Periodic {
    period: Duration,
    last: Mutex<Option<Instant>>,
}

impl Periodic {
    /// A chore done every `period`.
    pub fn every(period: Duration) -> Periodic {
        Periodic {
            period,
            last: Mutex::new(None),
        }
    }

    /// The period for looking for stale work: it can only appear after `claim_idle`, and a
    /// quarter of that keeps a dead worker's takeover prompt.
    pub fn for_claims(claim_idle: Duration) -> Periodic {
        Periodic::every((claim_idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(5)))
    }

    /// True when the chore should run now; the period restarts from here.
    pub fn is_due(&self) -> bool {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        match *last {
            Some(at) if at.elapsed() < self.period => false,
            _ => {
                *last = Some(Instant::now());
                true
            }
        }
    }

    /// Makes the chore due again at once (it found a full batch; there may be more).
    pub fn again(&self) {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_first_then_once_per_period_and_again_on_request() {
        let chore = Periodic::every(Duration::from_secs(60));
        assert!(chore.is_due());
        assert!(!chore.is_due());
        chore.again();
        assert!(chore.is_due());
        let fast = Periodic::every(Duration::from_millis(1));
        assert!(fast.is_due());
        std::thread::sleep(Duration::from_millis(5));
        assert!(fast.is_due());
    }
}
